//go:build unix

package compare

import (
	"fmt"
	"syscall"
)

// checkFiles refuses a loopback overlay of n nodes of degree d that could run out of file
// descriptors: each node holds its listener and up to 2d links, and both ends of every link
// are in this process. The soft limit is raised to the hard one first (Go does so at start
// on Linux; this covers the other systems).
func checkFiles(n, d int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // unknown: try
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	const spare = 256 // the process's own files, a DHT network being closed, ...
	need := uint64(n)*uint64(1+2*d) + spare
	if need > lim.Cur {
		return fmt.Errorf("%d overlay nodes of degree up to %d on loopback need up to %d file descriptors, the limit is %d: use fewer nodes, or a simulated network", n, 2*d, need, lim.Cur)
	}
	return nil
}
