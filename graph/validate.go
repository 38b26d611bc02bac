package graph

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// Limits on what a write may carry.
const (
	MaxIDLen     = 256  // bytes in any id
	MaxTextLen   = 1024 // bytes in a name or reason
	MaxWordLen   = 64   // bytes in a right name, a class or a label key
	MaxLabels    = 64   // labels on one folder
	MaxBatchSize = 100_000
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

// sortedSet returns the words sorted with duplicates removed.
func sortedSet(words []string) []string {
	out := slices.Clone(words)
	slices.Sort(out)
	return slices.Compact(out)
}
