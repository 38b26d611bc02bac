package graph

import (
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits on what a write may carry.
const (
	MaxIDLen     = 256  // bytes in any id
	MaxTextLen   = 1024 // bytes in a name or reason
	MaxWordLen   = 64   // bytes in a right name, a class or a label key
	MaxLabels    = 64   // labels on one folder
	MaxBatchSize = 100_000
	// DefaultMaxDepth is the default of Options.MaxDepth: deep enough for
	// any organisation chart (DESIGN.md's is 12 deep), shallow enough that
	// no walk up a tree is long.
	DefaultMaxDepth = 100
)

// validID reports whether s can be an id: 1 to MaxIDLen bytes of UTF-8 with
// no control characters.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// IDGrammar is the grammar of the ids a write may create: of folders,
// users, grants and locks (right names, classes and label keys are words,
// see validWord). It is checked when a write or an import is validated,
// not when a store is loaded or a committed batch is applied, so a store
// written under a looser grammar still loads, and every node applies the
// same batches alike.
type IDGrammar uint8

const (
	// IDText accepts 1 to MaxIDLen bytes of UTF-8 in Unicode normal form
	// C, with no control, format (invisible: U+200B, U+202E, U+FEFF...),
	// private-use or line and paragraph separator characters, and no white
	// space at either end; so that two ids that look alike are alike.
	IDText IDGrammar = iota
	// IDASCII accepts only printable ASCII without spaces (! to ~).
	IDASCII
)

// ParseIDGrammar reads "text" or "ascii".
func ParseIDGrammar(s string) (IDGrammar, error) {
	switch s {
	case "text", "":
		return IDText, nil
	case "ascii":
		return IDASCII, nil
	}
	return 0, fmt.Errorf("id grammar %q: want text or ascii", s)
}

// why returns what in id the grammar refuses, or "" when it accepts id.
func (g IDGrammar) why(id string) string {
	if !validID(id) {
		return fmt.Sprintf("must be 1 to %d bytes of text", MaxIDLen)
	}
	if g == IDASCII {
		for _, r := range id {
			if r < '!' || r > '~' {
				return fmt.Sprintf("holds %U: only printable ASCII without spaces is accepted", r)
			}
		}
		return ""
	}
	for _, r := range id {
		switch {
		case unicode.Is(unicode.Cf, r):
			return fmt.Sprintf("holds %U, an invisible format character", r)
		case unicode.In(r, unicode.Co, unicode.Zl, unicode.Zp):
			return fmt.Sprintf("holds %U, a private-use or separator character", r)
		}
	}
	first, _ := utf8.DecodeRuneInString(id)
	last, _ := utf8.DecodeLastRuneInString(id)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return "begins or ends with white space"
	}
	if !norm.NFC.IsNormalString(id) {
		return fmt.Sprintf("is not in Unicode normal form C (write it as %q)", norm.NFC.String(id))
	}
	return ""
}

// validText reports whether s can be a name or a reason.
func validText(s string) bool {
	return len(s) <= MaxTextLen && utf8.ValidString(s)
}

// validWord reports whether s is a short lower-case word: a right name, a
// user class or a label key. It starts with a letter and holds letters,
// digits, '_', '-' and '.'.
func validWord(s string) bool {
	if s == "" || len(s) > MaxWordLen {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

func validLabels(m map[string]string) (string, bool) {
	if len(m) > MaxLabels {
		return "", false
	}
	for k, v := range m {
		if !validWord(k) || !validText(v) {
			return k, false
		}
	}
	return "", true
}

// checkNewID refuses id as the id of a new what (folder, user, grant,
// lock) when it is no id, or taken.
func checkNewID(op, what, id string, taken bool) error {
	if !validID(id) {
		return newErr(op, id, ErrInvalid, "%s id must be 1 to %d bytes of text", what, MaxIDLen)
	}
	if taken {
		return newErr(op, id, ErrAlreadyExists, "%s exists", what)
	}
	return nil
}

// checkText refuses s as the what (name, reason) of id when it is not
// text.
func checkText(op, id, what, s string) error {
	if !validText(s) {
		return newErr(op, id, ErrInvalid, "%s too long or not UTF-8", what)
	}
	return nil
}

// checkClass refuses class, named for id, when it is not a word.
func checkClass(op, id, class string) error {
	if !validWord(class) {
		return newErr(op, id, ErrInvalid, "class %q must be a short lower-case word", class)
	}
	return nil
}

// checkLabels refuses labels as folder id's when a key is not a word, a
// value not text, or there are too many.
func checkLabels(op, id string, labels map[string]string) error {
	if k, ok := validLabels(labels); !ok {
		return newErr(op, id, ErrInvalid, "label %q: keys are short lower-case words, at most %d labels", k, MaxLabels)
	}
	return nil
}

// sortedSet returns the words sorted with duplicates removed.
func sortedSet(words []string) []string {
	out := slices.Clone(words)
	slices.Sort(out)
	return slices.Compact(out)
}
