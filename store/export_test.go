package store

// Exported for tests.
var (
	RevKey      = revKey
	ParseRevKey = parseRevKey
)
