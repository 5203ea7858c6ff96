package compare_test

import (
	"math"
	"testing"

	"github.com/shoalp2p/shoal/swarm/compare"
)

// TestExpect checks the theory columns against cases worked by hand.
func TestExpect(t *testing.T) {
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	// The flood bound d((d-1)^t-1)/(d-2): 4, 16, 52 copies at d=4 for t=1..3; 4,372 at t=7.
	near("FloodBound(4,1)", compare.FloodBound(4, 1), 4)
	near("FloodBound(4,3)", compare.FloodBound(4, 3), 52)
	near("FloodBound(4,7)", compare.FloodBound(4, 7), 4372)

	// A TTL-7 flood of 100 nodes reaches all 99 others: the one holder is found for certain,
	// and the copies are capped at a saturated network's n(d-1)+1.
	e := compare.Expect("flood", 100, 7, 4, 16, 1)
	near("flood 100/7 success", e.Success, 1)
	near("flood 100/7 messages", e.Messages, 100*3+1)

	// TTL 1 sends 4 copies, which land on 99(1-(98/99)^4) distinct nodes of the 99 others;
	// one holder among them is met with that share.
	reach := 99 * (1 - math.Pow(98.0/99, 4))
	near("flood 100/1 success", compare.Expect("flood", 100, 1, 4, 16, 1).Success, reach/99)
	// Two holders: 1 - (99-reach)/99 · (98-reach)/98.
	near("flood 100/1 two holders", compare.Expect("flood", 100, 1, 4, 16, 2).Success, 1-(99-reach)/99*(98-reach)/98)

	// 16 walkers of 1 step share the origin's 4 neighbours: 4(1-(3/4)^16) copies.
	w := compare.Expect("walk", 1000, 1, 4, 16, 1)
	m := 4 * (1 - math.Pow(0.75, 16))
	near("walk 1 step messages", w.Messages, 16)
	near("walk 1 step success", w.Success, 999*(1-math.Pow(998.0/999, m))/999)

	// Kademlia: log2(n) hops, k + α(⌈hops⌉-1) RPCs of two messages each, with k=8, α=3.
	d := compare.Expect("dht", 1024, 0, 0, 0, 10)
	near("dht hops", d.Hops, 10)
	near("dht messages", d.Messages, 2*(8+3*9))
	near("dht success", d.Success, 1)
}
