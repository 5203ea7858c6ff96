package announce_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/announce"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTracker answers every announce with one compact peer and counts what it saw.
type fakeTracker struct {
	hits   atomic.Int64
	events chan string
	ports  chan string
}

func (f *fakeTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	q := r.URL.Query()
	select {
	case f.events <- q.Get("event"):
	default:
	}
	select {
	case f.ports <- q.Get("port") + " left=" + q.Get("left"):
	default:
	}
	peers := string([]byte{127, 0, 0, 9, 0x1a, 0xe1}) // 127.0.0.9:6881
	b, _ := bencode.Marshal(map[string]any{"interval": 1800, "peers": peers})
	w.Write(b)
}

func newFake(t *testing.T) (*fakeTracker, string) {
	f := &fakeTracker{events: make(chan string, 16), ports: make(chan string, 16)}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/announce"
}

func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String() + "/announce"
	l.Close()
	return u
}

func collect(t *testing.T, c *announce.Client, ih metainfo.Hash) []netip.AddrPort {
	t.Helper()
	ch, err := c.Lookup(context.Background(), ih)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.AddrPort
	for a := range ch {
		out = append(out, a)
	}
	return out
}

// The first tier's dead tracker is skipped, the next one in the tier answers and is tried
// first from then on (BEP 12); its peers come back from Lookup, and the interval holds the
// next request back.
func TestTiersAndInterval(t *testing.T) {
	fake, live := newFake(t)
	dead := deadURL(t)
	c := announce.New(announce.Config{})
	defer c.Close()
	ih := metainfo.Hash{1, 2, 3}
	ctx := context.Background()
	a := peer.Announcement{InfoHash: ih, Port: 7000, Left: 123, Event: peer.EventStarted,
		Trackers: [][]string{{dead, live}}}
	if err := c.Announce(ctx, a); err != nil {
		t.Fatalf("announce: %v", err)
	}
	if ev, p := <-fake.events, <-fake.ports; ev != "started" || p != "7000 left=123" {
		t.Fatalf("tracker saw event %q, %s", ev, p)
	}
	got := collect(t, c, ih)
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.9:6881")}
	if !slices.Equal(got, want) {
		t.Fatalf("lookup: %v, want %v", got, want)
	}
	if n := fake.hits.Load(); n != 1 {
		t.Fatalf("tracker asked %d times, want 1 (the interval is 30 min)", n)
	}
	s := c.Stats()
	if s.Sent != 2 || s.Received != 1 || s.NodesContacted != 1 || s.PeersFound != 1 || s.Announces != 1 || s.Lookups != 1 {
		t.Fatalf("stats %+v", s)
	}
	// An event is sent at once, whatever the interval; the dead tracker is not asked again.
	a.Event = peer.EventCompleted
	if err := c.Announce(ctx, a); err != nil {
		t.Fatal(err)
	}
	if ev := <-fake.events; ev != "completed" {
		t.Fatalf("event %q, want completed", ev)
	}
	if s := c.Stats(); s.Sent != 3 {
		t.Fatalf("sent %d, want 3: the working tracker should now come first", s.Sent)
	}
}

// The trackers given on the command line come before the torrent's own.
func TestConfiguredTrackersFirst(t *testing.T) {
	mine, mineURL := newFake(t)
	theirs, theirsURL := newFake(t)
	c := announce.New(announce.Config{URLs: []string{mineURL}, MinInterval: time.Hour})
	defer c.Close()
	err := c.Announce(context.Background(), peer.Announcement{InfoHash: metainfo.Hash{9}, Port: 1,
		Trackers: [][]string{{theirsURL}}})
	if err != nil {
		t.Fatal(err)
	}
	if mine.hits.Load() != 1 || theirs.hits.Load() != 0 {
		t.Fatalf("hits: configured %d, torrent's %d", mine.hits.Load(), theirs.hits.Load())
	}
}

// With no tracker answering, Announce fails and Lookup yields nothing, without hanging.
func TestNoTracker(t *testing.T) {
	c := announce.New(announce.Config{})
	defer c.Close()
	ih := metainfo.Hash{4}
	if err := c.Announce(context.Background(), peer.Announcement{InfoHash: ih, Port: 1, Trackers: [][]string{{deadURL(t)}}}); err == nil {
		t.Fatal("announce to a dead tracker succeeded")
	}
	ch, _ := c.Lookup(context.Background(), ih)
	for range ch {
		t.Fatal("peers from nowhere")
	}
}
