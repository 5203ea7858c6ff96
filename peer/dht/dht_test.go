package dht_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/dht"
	"github.com/shoalp2p/shoal/swarm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, swarm.LibraryGoroutines()...)
}

// testLogger logs through t, so a failing test shows what the nodes said.
func testLogger(t testing.TB) *slog.Logger { return swarm.TestLogger(t, slog.LevelWarn) }

// newNode starts a DHT node on ip, closed when the test ends.
func newNode(t testing.TB, ip string, boot []string, stateDir string) *dht.Node {
	t.Helper()
	n, err := dht.New(dht.Config{Listen: ip + ":0", Bootstrap: boot, StateDir: stateDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// loopIP is the i-th test address: 127.0.0.10, 127.0.0.11, ...
func loopIP(i int) string { return fmt.Sprintf("127.0.0.%d", 10+i) }

// dhtSwarm starts a bare root node and n nodes bootstrapped from it, each on its own loopback
// address, and bootstraps them all twice, concurrently.
func dhtSwarm(t testing.TB, n int, stateDirs bool) (*dht.Node, []*dht.Node) {
	t.Helper()
	root := newNode(t, "127.0.0.1", []string{}, "")
	boot := []string{root.Addr().String()}
	nodes := make([]*dht.Node, n)
	for i := range nodes {
		dir := ""
		if stateDirs {
			dir = t.TempDir()
		}
		nodes[i] = newNode(t, loopIP(i), boot, dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 2 {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, nd := range nodes {
			wg.Go(func() { errs[i] = nd.Bootstrap(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("node %d: bootstrap: %v", i, err)
			}
		}
	}
	return root, nodes
}

func randomHash(t testing.TB) metainfo.Hash {
	var ih metainfo.Hash
	if _, err := rand.Read(ih[:]); err != nil {
		t.Fatal(err)
	}
	return ih
}

// lookup collects what a lookup yields until the channel closes.
func lookup(t testing.TB, n *dht.Node, ih metainfo.Hash, d time.Duration) []netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ch, err := n.Lookup(ctx, ih)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	var out []netip.AddrPort
	for ap := range ch {
		out = append(out, ap)
	}
	if ctx.Err() != nil {
		t.Fatalf("lookup still running after %v", d)
	}
	return out
}

func announce(t testing.TB, n *dht.Node, ih metainfo.Hash, port int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Announce(ctx, peer.Announcement{InfoHash: ih, Port: port, Event: peer.EventStarted}); err != nil {
		t.Fatalf("announce: %v", err)
	}
}

// TestSwarmLookup: 24 nodes bootstrapped from one bare node; one announces, every other one
// finds it.
func TestSwarmLookup(t *testing.T) {
	const n, port = 24, 51413
	started := time.Now()
	root, nodes := dhtSwarm(t, n, false)
	var sizes []int
	for _, nd := range nodes {
		sizes = append(sizes, nd.NumNodes())
	}
	slices.Sort(sizes)
	t.Logf("%d nodes bootstrapped in %v; routing table sizes %v; root has %d", n, time.Since(started).Round(time.Millisecond), sizes, root.NumNodes())

	ih := randomHash(t)
	before := nodes[0].Stats()
	t0 := time.Now()
	announce(t, nodes[0], ih, port)
	as := delta(nodes[0].Stats(), before)
	t.Logf("announce: %v, %d queries sent, %d replies, %d nodes contacted", time.Since(t0).Round(time.Microsecond), as.Sent, as.Received, as.NodesContacted)
	if as.Announces != 1 || as.Sent == 0 || as.Received == 0 {
		t.Errorf("announce stats %+v", as)
	}
	want := netip.MustParseAddrPort(loopIP(0) + ":" + fmt.Sprint(port))

	if got := lookup(t, nodes[0], ih, 10*time.Second); slices.Contains(got, want) {
		t.Errorf("the announcer found itself: %v", got)
	}

	var sent, contacted []int64
	var took []time.Duration
	for i, nd := range nodes[1:] {
		before := nd.Stats()
		t0 := time.Now()
		got := lookup(t, nd, ih, 10*time.Second)
		took = append(took, time.Since(t0))
		if !slices.Contains(got, want) {
			t.Errorf("node %d: lookup found %v, want %v", i+1, got, want)
		}
		s := delta(nd.Stats(), before)
		sent, contacted = append(sent, s.Sent), append(contacted, s.NodesContacted)
		// (Not Sent >= Received here: a ping sent just before may be answered during the lookup.)
		if s.Lookups != 1 || s.PeersFound != int64(len(got)) || s.Sent == 0 || s.Received == 0 || s.NodesContacted == 0 {
			t.Errorf("node %d: implausible stats for one lookup: %+v", i+1, s)
		}
		total := nd.Stats()
		if total.Sent < total.Received || total.Received == 0 {
			t.Errorf("node %d: implausible stats: %+v", i+1, total)
		}
	}
	slices.Sort(sent)
	slices.Sort(contacted)
	slices.Sort(took)
	t.Logf("%d lookups: queries sent min/median/max %d/%d/%d, nodes contacted %d/%d/%d, time %v/%v/%v",
		len(sent), sent[0], sent[len(sent)/2], sent[len(sent)-1],
		contacted[0], contacted[len(contacted)/2], contacted[len(contacted)-1],
		took[0].Round(time.Microsecond), took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond))
	t.Logf("whole-life stats of node 1: %+v", nodes[1].Stats())

	// A traced lookup over UDP finds the same, and says how.
	tr, err := nodes[2].Trace(context.Background(), ih)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(tr.Peers, want) || tr.Hops < 1 || tr.Queries == 0 || tr.Replies == 0 || tr.Bytes == 0 || tr.FirstPeer <= 0 {
		t.Errorf("trace %+v", tr)
	}
	t.Logf("trace from node 2: %+v", tr)
}

func delta(a, b peer.SearchStats) peer.SearchStats {
	return peer.SearchStats{
		Announces: a.Announces - b.Announces, Lookups: a.Lookups - b.Lookups,
		Sent: a.Sent - b.Sent, Received: a.Received - b.Received,
		NodesContacted: a.NodesContacted - b.NodesContacted, PeersFound: a.PeersFound - b.PeersFound,
	}
}

// TestRestartRejoins: a node saves its routing table on Close; restarted with no bootstrap
// node (and the old one gone), it rejoins from that table and finds a peer announced since.
func TestRestartRejoins(t *testing.T) {
	root, nodes := dhtSwarm(t, 12, false)
	dir := t.TempDir()
	a, err := dht.New(dht.Config{Listen: "127.0.0.40:0", Bootstrap: []string{root.Addr().String()}, StateDir: dir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "dht-nodes")); err != nil || fi.Size() == 0 {
		t.Fatalf("no routing table saved: %v", err)
	}
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}

	ih := randomHash(t)
	announce(t, nodes[5], ih, 6881)
	want := netip.MustParseAddrPort(loopIP(5) + ":6881")

	// No bootstrap node at all (an empty list; nil would mean the public routers).
	b2 := newNode(t, "127.0.0.40", []string{}, dir)
	if err := b2.Bootstrap(ctx); err != nil {
		t.Fatalf("restarted node did not rejoin: %v", err)
	}
	got := lookup(t, b2, ih, 10*time.Second)
	if !slices.Contains(got, want) {
		t.Fatalf("restarted node found %v, want %v", got, want)
	}
	t.Logf("restarted node: %d nodes in its table, found %v; stats %+v", b2.NumNodes(), got, b2.Stats())
}

// warnCounter counts the records at Warn and above whose message contains a string.
type warnCounter struct {
	mu    sync.Mutex
	match string
	n     int
	all   []string
}

func (w *warnCounter) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all = append(w.all, r.Level.String()+" "+r.Message)
	if r.Level >= slog.LevelWarn && strings.Contains(r.Message, w.match) {
		w.n++
	}
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

func (w *warnCounter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// deadPort is a UDP port on 127.0.0.1 that nothing listens on (any more).
func deadPort(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// TestNoNetwork: with a bootstrap node that does not answer, a node starts, warns once,
// looks up nothing without hanging, and closes.
func TestNoNetwork(t *testing.T) {
	w := &warnCounter{match: "no bootstrap node reachable"}
	n, err := dht.New(dht.Config{Listen: "127.0.0.50:0", Bootstrap: []string{deadPort(t)}, Logger: slog.New(w)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		if err := n.Bootstrap(ctx); err == nil {
			t.Fatal("bootstrap from a dead node succeeded")
		}
	}
	t0 := time.Now()
	ch, err := n.Lookup(ctx, randomHash(t))
	if err == nil {
		for ap := range ch {
			t.Errorf("lookup found %v", ap)
		}
	}
	if ctx.Err() != nil {
		t.Fatal("lookup hung")
	}
	t.Logf("lookup with no network: ended after %v (err %v)", time.Since(t0).Round(time.Millisecond), err)
	if err := n.Announce(ctx, peer.Announcement{InfoHash: randomHash(t), Port: 1234}); err == nil {
		t.Error("announce with no network succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if c := w.count(); c != 1 {
		t.Errorf("warned %d times, want once; log: %q", c, w.all)
	}
	t.Logf("log: %q", w.all)
	if _, err := n.Lookup(ctx, randomHash(t)); err == nil {
		t.Error("lookup after Close succeeded")
	}
}

// TestCloseDuringLookup: Close ends a lookup in flight (here one waiting on a dead node) and
// closes its channel; a cancelled context does the same.
func TestCloseDuringLookup(t *testing.T) {
	n, err := dht.New(dht.Config{Listen: "127.0.0.51:0", Bootstrap: []string{deadPort(t)}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch1, err := n.Lookup(ctx, randomHash(t))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for range ch1 {
	}
	ch2, err := n.Lookup(context.Background(), randomHash(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-ch2:
		if ok {
			t.Fatal("lookup yielded a peer")
		}
	default:
		t.Fatal("Close returned with a lookup channel still open")
	}
}

// TestStoppedAnnounceIsNoop: the DHT cannot withdraw an announce; a "stopped" one sends nothing.
func TestStoppedAnnounceIsNoop(t *testing.T) {
	n := newNode(t, "127.0.0.52", []string{}, "")
	before := n.Stats()
	if err := n.Announce(context.Background(), peer.Announcement{InfoHash: randomHash(t), Port: 1, Event: peer.EventStopped}); err != nil {
		t.Fatal(err)
	}
	if s := n.Stats(); s != before {
		t.Fatalf("stats changed: %+v -> %+v", before, s)
	}
	if err := n.Announce(context.Background(), peer.Announcement{InfoHash: randomHash(t), Port: 0}); err == nil {
		t.Fatal("announce with port 0 accepted")
	}
}

func TestBadConfig(t *testing.T) {
	for _, cfg := range []dht.Config{
		{Listen: "nonsense"},
		{Listen: "127.0.0.1:0", Bootstrap: []string{"127.0.0.1"}},
		{Listen: "127.0.0.1:0", Bootstrap: []string{"127.0.0.1:0"}},
		{Listen: "127.0.0.1:99999"},
	} {
		if n, err := dht.New(cfg); err == nil {
			n.Close()
			t.Errorf("%+v: accepted", cfg)
		}
	}
}
