package store_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, started by one of them with its variable
// set, plays a child process: TestKill9's writer, killed as it writes, or
// TestRestoreRefusesDamage's checker, which bbolt may crash.
func TestMain(m *testing.M) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
	}
	if path := os.Getenv(checkFileEnv); path != "" {
		checkChild(path)
	}
	os.Exit(m.Run())
}
