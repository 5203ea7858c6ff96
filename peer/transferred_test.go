package peer_test

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// Transferred counts what moved both ways, as the Complete event does, and a PeerFound
// carries the moment its connection was made, not the moment it was reported.
func TestTransferredAndPeerTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.bin")
	writeTree(t, filepath.Dir(path), map[string]int{"one.bin": 3<<20 + 5})
	src, err := meta.Create(path, meta.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seeder := node(t, "127.0.0.2")
	st, err := seeder.Add(src, peer.AddOptions{Dir: filepath.Dir(path), Name: "one.bin", Seed: true, Hashed: true})
	if err != nil {
		t.Fatal(err)
	}
	start(t, st, peer.RunOptions{SeedTime: -1})

	// The leecher reads at most 2 MiB/s, so the download takes over a second, and a PeerFound
	// emitted on the run's progress tick (every 2 s) comes after it.
	leecher, err := peer.New(peer.Config{Listen: "127.0.0.3:0", DataDir: t.TempDir(), DisablePEX: true, DownloadRate: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leecher.Close() })
	lt, err := leecher.Add(src, peer.AddOptions{Dir: t.TempDir(), Peers: []netip.AddrPort{seeder.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	r := start(t, lt, peer.RunOptions{SeedTime: 0, Interval: 2 * time.Second})
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	ended := time.Now()
	var found []peer.PeerFound
	var c peer.Complete
	for _, e := range r.drain() {
		switch e := e.(type) {
		case peer.PeerFound:
			found = append(found, e)
		case peer.Complete:
			c = e
		}
	}
	size := src.Info.TotalLength()
	took := time.Duration(c.Seconds * float64(time.Second))
	if len(found) != 1 || found[0].At.Before(began) || found[0].At.After(ended) || found[0].At.Sub(began) > took/2 {
		t.Fatalf("peer events %+v: want one, made between %v and %v, early in a download of %v", found, began, ended, took)
	}
	down, up := lt.Transferred()
	if down != c.Downloaded || down < size || up != c.Uploaded {
		t.Fatalf("leecher transferred %d down, %d up; complete event %+v; size %d", down, up, c, size)
	}
	if _, sent := st.Transferred(); sent < size {
		t.Fatalf("seeder sent %d bytes, want at least %d", sent, size)
	}
}
