package swarm_test

import (
	"crypto/rand"
	"os"
	"path/filepath"
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
	src := filepath.Join(t.TempDir(), "payload.bin")
	data := make([]byte, 1<<20+4321)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range swarm.Modes {
		t.Run(mode, func(t *testing.T) {
			s := swarm.New(t, 10, swarm.WithMode(mode), swarm.WithTimeout(90*time.Second))
			if len(s.Nodes()) != 10 {
				t.Fatalf("%d nodes, want 10", len(s.Nodes()))
			}
			began := time.Now()
			tor := s.Seed(src)
			downloads := s.Fetch(tor)
			if len(downloads) != 9 {
				t.Fatalf("%d downloads, want 9", len(downloads))
			}
			secs := make([]float64, len(downloads))
			for i, d := range downloads {
				secs[i] = d.Seconds
			}
			slices.Sort(secs)
			t.Logf("%s: 9 downloads of %d bytes in %v; per node min/median/max %.2f/%.2f/%.2f s",
				mode, len(data), time.Since(began).Round(time.Millisecond), secs[0], secs[len(secs)/2], secs[len(secs)-1])
		})
	}
}
