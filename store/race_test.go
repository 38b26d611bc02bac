//go:build race

package store_test

// raceEnabled is true when the tests run under the race detector, which
// makes each restore of TestRestoreRefusesDamage (a child process and an
// index load) tens of times slower: that pass restores a sample, the pass
// without the detector all of them.
const raceEnabled = true
