// Package store keeps Canopy's state in one bbolt file: a bucket for each
// kind of entity holding its current record, the change log (one entry per
// revision: time, actor and the mutations applied) and the revision. See
// schema.go for every bucket and key.
//
// DB implements graph.Journal. A group of batches from the index's writer
// is stored in one read-write transaction, so one fsync makes them all
// durable; Append returns only after that fsync (bbolt's NoSync stays off),
// and the index acknowledges a write only after Append returns. A batch's
// records and its log entry share the transaction, so the state and the
// log never disagree, even after kill -9.
//
// Transactions are short and never outlive a call: Load and ReadLog copy
// what they read before returning.
package store
