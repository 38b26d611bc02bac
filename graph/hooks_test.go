package graph

// SetLockScanCost sets lockScanCost for a test and returns the old value.
func SetLockScanCost(c int) int {
	old := lockScanCost
	lockScanCost = c
	return old
}
