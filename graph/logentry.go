package graph

import (
	"encoding/json"
	"fmt"
	"time"
)

// logEntry is the stored form of one committed batch in a change log,
// the same in every store: what Commit holds but its records and the
// access changes.
type logEntry struct {
	Revision  uint64     `json:"revision"`
	Time      time.Time  `json:"time"`
	Actor     string     `json:"actor"`
	ActedFor  string     `json:"acted_for,omitempty"` // Commit.ActedFor
	Mutations []Mutation `json:"mutations"`
	Places    []Place    `json:"places,omitempty"`   // Commit.Places
	Touched   [][]int32  `json:"touched,omitempty"`  // Commit.Touched
	Subjects  [][]Object `json:"subjects,omitempty"` // Commit.Subjects
	// Scopes is how logs written before places were kept said the same:
	// each mutation's folders, ancestors included. It is read, never
	// written.
	Scopes [][]string `json:"scopes,omitempty"`
}

// MarshalCommit encodes c as a change log keeps it: its revision, time,
// actor, mutations, places and subjects (when it has them), without its
// records or access changes.
func MarshalCommit(c Commit) ([]byte, error) {
	b, err := json.Marshal(logEntry{Revision: c.Revision, Time: c.Time, Actor: c.Actor, ActedFor: c.ActedFor, Mutations: c.Mutations, Places: c.Places, Touched: c.Touched, Subjects: c.Subjects})
	if err != nil {
		return nil, fmt.Errorf("encode log entry %d: %w", c.Revision, err)
	}
	return b, nil
}

// UnmarshalCommit decodes what MarshalCommit encoded, or an entry written
// before places were kept (its scopes become places).
func UnmarshalCommit(b []byte) (Commit, error) {
	var e logEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return Commit{}, fmt.Errorf("decode log entry: %w", err)
	}
	if e.Touched == nil && e.Scopes != nil {
		e.Places, e.Touched = PlacesFromScopes(e.Scopes)
	}
	return Commit{Revision: e.Revision, Time: e.Time, Actor: e.Actor, ActedFor: e.ActedFor, Mutations: e.Mutations, Places: e.Places, Touched: e.Touched, Subjects: e.Subjects}, nil
}
