//go:build race

package flood_test

// raceOn: the race detector is on (make test), which makes the simulated overlays several
// times slower; the largest tests simulate fewer nodes then.
const raceOn = true
