//go:build race

package graph_test

// raceEnabled is true when the tests run under the race detector. The
// differential tests then build fewer worlds: that pass is there to find
// data races, and the pass without the detector compares the full count
// with the reference.
const raceEnabled = true
