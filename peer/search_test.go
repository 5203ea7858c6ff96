package peer_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// board is an in-memory meeting point: what one node announces, the others look up.
type board struct {
	mu    sync.Mutex
	peers map[metainfo.Hash][]netip.AddrPort
}

// pin is one node's Discovery adapter on the board; it records the announcements it makes.
type pin struct {
	b       *board
	ip      netip.Addr
	mu      sync.Mutex
	events  []peer.AnnounceEvent
	lefts   []int64
	lookups int
	closed  bool
}

func (p *pin) Name() string { return "pin" }

func (p *pin) Announce(_ context.Context, a peer.Announcement) error {
	p.mu.Lock()
	p.events = append(p.events, a.Event)
	p.lefts = append(p.lefts, a.Left)
	p.mu.Unlock()
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	ap := netip.AddrPortFrom(p.ip, uint16(a.Port))
	if !slices.Contains(p.b.peers[a.InfoHash], ap) {
		p.b.peers[a.InfoHash] = append(p.b.peers[a.InfoHash], ap)
	}
	return nil
}

func (p *pin) Lookup(_ context.Context, ih metainfo.Hash) (<-chan netip.AddrPort, error) {
	p.mu.Lock()
	p.lookups++
	p.mu.Unlock()
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	ch := make(chan netip.AddrPort, len(p.b.peers[ih]))
	for _, a := range p.b.peers[ih] {
		ch <- a
	}
	close(ch)
	return ch, nil
}

func (p *pin) Stats() peer.SearchStats { return peer.SearchStats{} }

func (p *pin) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

func (p *pin) seen() ([]peer.AnnounceEvent, []int64, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events), slices.Clone(p.lefts), p.lookups, p.closed
}

func pinnedNode(t *testing.T, b *board, ip string) (*peer.Node, *pin) {
	t.Helper()
	p := &pin{b: b, ip: netip.MustParseAddr(ip)}
	n, err := peer.New(peer.Config{Listen: ip + ":0", DataDir: t.TempDir(), DisablePEX: true, Discovery: []peer.Discovery{p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n, p
}

// Peers found by an adapter reach the torrent, and the node announces what trackers need:
// started once the data is ready (left 0 for a verified seed), completed when a download
// completes, stopped when it ends; and the node closes its adapters.
func TestDiscoveryFindsSeeder(t *testing.T) {
	b := &board{peers: make(map[metainfo.Hash][]netip.AddrPort)}
	src := filepath.Join(t.TempDir(), "d.bin")
	writeTree(t, filepath.Dir(src), map[string]int{"d.bin": 3 << 20})
	seeder, seedPin := pinnedNode(t, b, "127.0.0.2")
	s := seed(t, seeder, src)
	waitFor(t, 10*time.Second, func() bool { ev, _, _, _ := seedPin.seen(); return len(ev) > 0 })
	if ev, lefts, _, _ := seedPin.seen(); ev[0] != peer.EventStarted || lefts[0] != 0 {
		t.Fatalf("seeder announced %v with left %v, want started with left 0", ev, lefts)
	}

	leecher, leechPin := pinnedNode(t, b, "127.0.0.3")
	out := t.TempDir()
	r := get(t, leecher, s, out, 0) // no direct peers: only the board
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Dir(src), out)
	var sources []string
	for _, e := range r.drain() {
		if f, ok := e.(peer.PeerFound); ok {
			sources = append(sources, f.Source)
		}
	}
	if !slices.Contains(sources, "pin") {
		t.Fatalf("peer sources %v, want the seeder found by pin", sources)
	}
	ev, lefts, lookups, _ := leechPin.seen()
	if lookups == 0 || len(ev) < 3 || ev[0] != peer.EventStarted || ev[len(ev)-1] != peer.EventStopped ||
		!slices.Contains(ev, peer.EventCompleted) || lefts[0] != s.Info.TotalLength() {
		t.Fatalf("leecher: %d lookups, announced %v with left %v", lookups, ev, lefts)
	}
	leecher.Close()
	if _, _, _, closed := leechPin.seen(); !closed {
		t.Fatal("node did not close its adapter")
	}
}

// A magnet leecher whose only adapter is a tracker-like one (it wants events) announces at
// once, before it has the metadata, with left -1 (unknown): a tracker answers only announces,
// and the metadata must come from the peers it hands out. Once the data is ready it announces
// what is left (no second started), then completed and stopped.
func TestMagnetAnnouncesBeforeMetadata(t *testing.T) {
	b := &board{peers: make(map[metainfo.Hash][]netip.AddrPort)}
	src := filepath.Join(t.TempDir(), "m.bin")
	writeTree(t, filepath.Dir(src), map[string]int{"m.bin": 1<<20 + 4321})
	seeder, _ := pinnedNode(t, b, "127.0.0.2")
	s := seed(t, seeder, src)
	m, err := meta.ParseMagnet(meta.Magnet(s))
	if err != nil {
		t.Fatal(err)
	}
	leecher, leechPin := pinnedNode(t, b, "127.0.0.3")
	out := t.TempDir()
	r := get(t, leecher, m, out, 0)
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Dir(src), out)
	leecher.Close()
	ev, lefts, _, _ := leechPin.seen()
	want := []peer.AnnounceEvent{peer.EventStarted, peer.EventNone}
	if len(ev) < 4 || !slices.Equal(ev[:2], want) || lefts[0] != -1 || lefts[1] != s.Info.TotalLength() ||
		!slices.Contains(ev, peer.EventCompleted) || ev[len(ev)-1] != peer.EventStopped ||
		slices.Contains(ev[1:], peer.EventStarted) {
		t.Fatalf("magnet leecher announced %v with left %v; want started with left -1, then none with left %d, completed, stopped",
			ev, lefts, s.Info.TotalLength())
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("condition not met after %v", d)
		}
	}
}
