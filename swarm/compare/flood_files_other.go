//go:build !unix

package compare

// checkFiles: on a system without rlimits, a loopback overlay is tried as asked.
func checkFiles(n, d int) error { return nil }
