// Package orgfile reads and writes organisation files: a whole
// organisation, or several, as one YAML (or JSON) document that people
// write, review and keep in version control. docs/organisation-file.md
// defines the format.
//
// A File is parsed with every problem reported at once, each with its
// file, line and column (Parse); checked by loading it into a fresh
// in-memory index, the real one, so that whatever the server would refuse
// is refused here first (Check); turned into the mutations that create it
// (File.Mutations), or into the ones that make a server's state match it
// (Plan); and written back out from a server's export (FromMutations,
// Render), in a canonical form, so that export, apply and export again
// give the same bytes.
//
// # What a file manages
//
// A file manages the organisations it lists, with the users whose home is
// in them and the grants and locks that name them, and the rights
// catalogue and the self rights when it has those sections. Everything
// else on a server is left alone, even with pruning.
package orgfile
