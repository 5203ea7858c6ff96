//go:build !race

package flood_test

const raceOn = false
