package swarm_test

import (
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/swarm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, swarm.LibraryGoroutines()...)
}

// TestModes: in each mode, 10 nodes on their own loopback addresses; node 0 seeds a random
// file and the other 9 download it, finding peers through the mode alone, every copy's
// sha256 checked.
func TestModes(t *testing.T) {
	if testing.Short() {
		t.Skip("40 full nodes")
	}
	const size = 1<<20 + 4321
	src, err := swarm.WriteContent(t.TempDir(), size, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range swarm.Modes {
		t.Run(mode, func(t *testing.T) {
			s := swarm.New(t, 10, swarm.WithMode(mode))
			if len(s.Nodes()) != 10 || s.Mode() != mode {
				t.Fatalf("%d nodes in mode %q, want 10 in %q", len(s.Nodes()), s.Mode(), mode)
			}
			for i, n := range s.Nodes() {
				if got := n.Addr().Addr(); got != swarm.Addr(i) {
					t.Fatalf("node %d is on %v, want %v", i, got, swarm.Addr(i))
				}
			}
			tor, err := s.Seed(t.Context(), src)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := s.Fetch(t.Context(), tor, swarm.FetchOptions{Timeout: 90 * time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK || rep.Verified != 9 || rep.Leechers != 9 || rep.Seeders != 1 {
				t.Fatalf("%+v", rep)
			}
			var secs []float64
			for _, n := range rep.PerNode {
				if n.Role == "leecher" {
					secs = append(secs, n.Seconds)
				}
			}
			slices.Sort(secs)
			t.Logf("%s: 9 downloads of %d bytes in %.2f s; per node min/median/max %.2f/%.2f/%.2f s; first peer p50 %.2f s",
				mode, size, rep.Seconds, secs[0], secs[len(secs)/2], secs[len(secs)-1], rep.FirstPeer.P50)
		})
	}
}
