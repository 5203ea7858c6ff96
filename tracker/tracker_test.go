package tracker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	trackerClient "github.com/anacrolix/torrent/tracker"
	trHttp "github.com/anacrolix/torrent/tracker/http"
	"github.com/anacrolix/torrent/types/infohash"

	"github.com/shoalp2p/shoal/tracker"
)

var (
	ihA = hash20("torrent-A-", 0)
	ihB = hash20("torrent-B-", 0)
)

// Every malformed announce is answered with status 200 and a bencoded failure reason that
// names what is wrong.
func TestAnnounceMalformed(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	good := ann{ih: ihA, id: hash20("peer-", 1), port: 6881, left: 10}.query()
	for _, c := range []struct {
		name, query, want string
	}{
		{"empty", "", "missing info_hash"},
		{"missing info_hash", "peer_id=" + esc(hash20("p", 1)) + "&port=1", "missing info_hash"},
		{"short info_hash", strings.Replace(good, "info_hash="+esc(ihA), "info_hash="+esc(ihA[:19]), 1), "invalid info_hash"},
		{"long info_hash", strings.Replace(good, "info_hash="+esc(ihA), "info_hash="+esc(ihA+"x"), 1), "invalid info_hash"},
		{"empty info_hash", strings.Replace(good, "info_hash="+esc(ihA), "info_hash=", 1), "invalid info_hash"},
		{"two info_hash", good + "&info_hash=" + esc(ihB), "info_hash given more than once"},
		{"missing peer_id", "info_hash=" + esc(ihA) + "&port=1", "missing peer_id"},
		{"short peer_id", strings.Replace(good, "peer_id="+esc(hash20("peer-", 1)), "peer_id=abc", 1), "invalid peer_id"},
		{"missing port", "info_hash=" + esc(ihA) + "&peer_id=" + esc(hash20("p", 1)), "missing port"},
		{"port 0", strings.Replace(good, "port=6881", "port=0", 1), "invalid port"},
		{"port 65536", strings.Replace(good, "port=6881", "port=65536", 1), "invalid port"},
		{"negative port", strings.Replace(good, "port=6881", "port=-1", 1), "invalid port"},
		{"port not a number", strings.Replace(good, "port=6881", "port=http", 1), "invalid port"},
		{"empty port", strings.Replace(good, "port=6881", "port=", 1), "invalid port"},
		{"two ports", good + "&port=6882", "port given more than once"},
		{"huge numwant", good + "&numwant=99999999999999999999999", "invalid numwant"},
		{"numwant not a number", good + "&numwant=lots", "invalid numwant"},
		{"compact 2", good + "&compact=2", "invalid compact"},
		{"compact true", good + "&compact=true", "invalid compact"},
		{"bad event", good + "&event=finished", "invalid event"},
		{"left not a number", strings.Replace(good, "left=10", "left=ten", 1), "invalid left"},
		{"negative left", strings.Replace(good, "left=10", "left=-1", 1), "invalid left"},
		{"left too big", strings.Replace(good, "left=10", "left=9223372036854775808", 1), "invalid left"},
		{"uploaded not a number", strings.Replace(good, "uploaded=0", "uploaded=1.5", 1), "invalid uploaded"},
		{"downloaded not a number", strings.Replace(good, "downloaded=0", "downloaded=x", 1), "invalid downloaded"},
		{"bad escape", good + "&key=%zz", "malformed query"},
		{"semicolon", good + ";x=1", "malformed query"},
		{"garbage", "\x00\xff%%%\x01&&==&\x7f", "malformed query"},
		{"garbage pairs", "a=b&&c&=d&\xfe\xfd=1", "missing info_hash"},
		{"huge query", good + "&key=" + strings.Repeat("k", tracker.MaxQueryBytes), "query string too long"},
		{"huge repeated info_hash", strings.Repeat("info_hash="+esc(ihA)+"&", 200), "query string too long"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := failure(t, get(t, srv, "/announce", c.query, "127.0.0.2:40000")); !strings.Contains(got, c.want) {
				t.Fatalf("failure reason %q, want it to say %q", got, c.want)
			}
		})
	}
	// Only GET: any other method gets a failure reason too, for announce and scrape alike.
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, "BREW"} {
		for _, path := range []string{"/announce", "/scrape"} {
			r := httptest.NewRequest(method, path+"?"+good, strings.NewReader(good))
			r.RemoteAddr = "127.0.0.2:40000"
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				t.Fatalf("%s %s: status %d", method, path, w.Code)
			}
			if got := failure(t, w.Body.Bytes()); got != "not a GET request" {
				t.Fatalf("%s %s: failure reason %q", method, path, got)
			}
		}
	}
	if st := srv.Stats(); st.Torrents != 0 || st.Announces != 0 || st.Failures == 0 {
		t.Fatalf("after bad announces only: %+v", st)
	}
}

// Valid announces at the edges of the rules.
func TestAnnounceLenient(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	id := hash20("peer-", 1)
	for _, q := range []string{
		"info_hash=" + esc(ihA) + "&peer_id=" + esc(id) + "&port=1",                // no counts: a leecher
		"info_hash=" + esc(ihA) + "&peer_id=" + esc(id) + "&port=65535&numwant=-1", // default numwant
		ann{ih: ihA, id: id, port: 2, left: 1 << 62, extra: "&numwant=100000&event=paused&compact=1&key=abc&ip=10.0.0.1"}.query(),
		ann{ih: ihA, id: id, port: 3, event: "completed"}.query(),
	} {
		if r := decodeAnnounce(t, get(t, srv, "/announce", q, "127.0.0.2:40000")); r.Failure != "" {
			t.Errorf("%s: failure %q", q, r.Failure)
		}
	}
}

// Compact answers (BEP 23): 6 bytes a peer, every other peer and never the asker; seeders
// are given only leechers.
func TestAnnounceCompact(t *testing.T) {
	srv := newServer(t, tracker.Config{Interval: 10 * time.Minute})
	seed := ann{ih: ihA, id: hash20("seed-", 0), port: 7000, left: 0, event: "started"}
	r := announce(t, srv, seed, "127.0.0.2:50000")
	if len(r.compactPeers(t)) != 0 || r.Complete != 1 || r.Incomplete != 0 {
		t.Fatalf("first peer: %+v", r)
	}
	if r.Interval != 600 || r.MinInterval != 300 {
		t.Fatalf("interval %d, min interval %d; want 600 and 300", r.Interval, r.MinInterval)
	}
	var want []netip.AddrPort
	want = append(want, netip.MustParseAddrPort("127.0.0.2:7000"))
	for i := 3; i <= 5; i++ {
		a := ann{ih: ihA, id: hash20("leech-", i), port: 7000 + i, left: 100, event: "started"}
		announce(t, srv, a, fmt.Sprintf("127.0.0.%d:50000", i))
		want = append(want, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), uint16(7000+i)))
	}
	// The same leecher again (a regular announce): every peer but itself.
	r = announce(t, srv, ann{ih: ihA, id: hash20("leech-", 3), port: 7003, left: 50}, "127.0.0.3:50001")
	got := r.compactPeers(t)
	slices.SortFunc(got, netip.AddrPort.Compare)
	if exp := slices.Delete(slices.Clone(want), 1, 2); !slices.Equal(got, exp) {
		t.Fatalf("leecher got %v, want %v", got, exp)
	}
	if r.Complete != 1 || r.Incomplete != 3 {
		t.Fatalf("complete %d incomplete %d, want 1 and 3", r.Complete, r.Incomplete)
	}
	// The seeder gets the three leechers only.
	r = announce(t, srv, ann{ih: ihA, id: hash20("seed-", 0), port: 7000, left: 0}, "127.0.0.2:50002")
	got = r.compactPeers(t)
	slices.SortFunc(got, netip.AddrPort.Compare)
	if !slices.Equal(got, want[1:]) {
		t.Fatalf("seeder got %v, want the leechers %v", got, want[1:])
	}
	// numwant limits the sample.
	r = announce(t, srv, ann{ih: ihA, id: hash20("leech-", 4), port: 7004, left: 50, extra: "&numwant=2"}, "127.0.0.4:50000")
	if n := len(r.compactPeers(t)); n != 2 {
		t.Fatalf("numwant=2 gave %d peers", n)
	}
	r = announce(t, srv, ann{ih: ihA, id: hash20("leech-", 4), port: 7004, left: 50, extra: "&numwant=0"}, "127.0.0.4:50000")
	if n := len(r.compactPeers(t)); n != 0 {
		t.Fatalf("numwant=0 gave %d peers", n)
	}
}

// Non-compact answers (compact=0): a list of {peer id, ip, port}; no_peer_id leaves the ids
// out.
func TestAnnounceNonCompact(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	announce(t, srv, ann{ih: ihA, id: hash20("seed-", 0), port: 7000, left: 0}, "127.0.0.2:50000")
	announce(t, srv, ann{ih: ihA, id: hash20("leech-", 3), port: 7003, left: 9}, "127.0.0.3:50000")
	r := announce(t, srv, ann{ih: ihA, id: hash20("leech-", 4), port: 7004, left: 9, extra: "&compact=0"}, "127.0.0.4:50000")
	got := r.dictPeers(t)
	slices.SortFunc(got, func(a, b peerDict) int { return strings.Compare(a.IP, b.IP) })
	want := []peerDict{{hash20("seed-", 0), "127.0.0.2", 7000}, {hash20("leech-", 3), "127.0.0.3", 7003}}
	if !slices.Equal(got, want) {
		t.Fatalf("peers %+v, want %+v", got, want)
	}
	r = announce(t, srv, ann{ih: ihA, id: hash20("leech-", 4), port: 7004, left: 9, extra: "&compact=0&no_peer_id=1"}, "127.0.0.4:50000")
	for _, p := range r.dictPeers(t) {
		if p.ID != "" || p.IP == "" || p.Port == 0 {
			t.Fatalf("no_peer_id: peer %+v", p)
		}
	}
}

// A client that comes over IPv6 gets IPv6 peers in "peers6" (BEP 7), and IPv4 clients never
// see them.
func TestAnnounceIPv6(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	announce(t, srv, ann{ih: ihA, id: hash20("v4-", 0), port: 7000, left: 0}, "127.0.0.2:50000")
	announce(t, srv, ann{ih: ihA, id: hash20("v6-", 1), port: 7001, left: 0}, "[::1]:50000")
	r := announce(t, srv, ann{ih: ihA, id: hash20("v6-", 2), port: 7002, left: 9}, "[::2]:50000")
	if got := splitCompact(t, r.Peers6, 16); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("[::1]:7001")}) {
		t.Fatalf("peers6 %v, want [::1]:7001", got)
	}
	if n := len(r.compactPeers(t)); n != 0 {
		t.Fatalf("IPv6 client got %d IPv4 peers", n)
	}
	r = announce(t, srv, ann{ih: ihA, id: hash20("v4-", 3), port: 7003, left: 9}, "[::ffff:127.0.0.3]:50000") // v4-mapped
	if got := r.compactPeers(t); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:7000")}) || r.Peers6 != "" {
		t.Fatalf("IPv4 client got peers %v and peers6 %q", got, r.Peers6)
	}
}

// The same over real sockets: a peer announcing from [::1] appears in peers6 of another.
func TestAnnounceIPv6Loopback(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	hs := httptest.NewUnstartedServer(srv)
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	hs.Listener = l
	hs.Start()
	defer hs.Close()
	c := hs.Client()
	annGet := func(a ann) annResp {
		resp, err := c.Get(hs.URL + "/announce?" + a.query())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = io.Copy(&b, resp.Body)
		r := decodeAnnounce(t, []byte(b.String()))
		if resp.StatusCode != 200 || r.Failure != "" {
			t.Fatalf("status %d, %+v", resp.StatusCode, r)
		}
		return r
	}
	annGet(ann{ih: ihA, id: hash20("v6-", 1), port: 7001, left: 0})
	r := annGet(ann{ih: ihA, id: hash20("v6-", 2), port: 7002, left: 5})
	if got := splitCompact(t, r.Peers6, 16); !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("[::1]:7001")}) {
		t.Fatalf("peers6 %v, want [::1]:7001", got)
	}
}

// stopped removes the peer; completed counts a download once.
func TestAnnounceEvents(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	a := ann{ih: ihA, id: hash20("p-", 1), port: 7001, left: 10, event: "started"}
	announce(t, srv, a, "127.0.0.2:1")
	b := ann{ih: ihA, id: hash20("p-", 2), port: 7002, left: 10, event: "started"}
	announce(t, srv, b, "127.0.0.3:1")
	a.left, a.event = 0, "completed"
	if r := announce(t, srv, a, "127.0.0.2:1"); r.Complete != 1 || r.Incomplete != 1 {
		t.Fatalf("after completed: %+v", r)
	}
	announce(t, srv, a, "127.0.0.2:1") // again: not a second download
	b.event = "stopped"
	r := announce(t, srv, b, "127.0.0.3:1")
	if r.Complete != 1 || r.Incomplete != 0 || len(r.compactPeers(t)) != 0 {
		t.Fatalf("after stopped: %+v", r)
	}
	f := scrape(t, srv, "127.0.0.9:1", ihA)[ihA]
	if f != (scrapeFile{Complete: 1, Incomplete: 0, Downloaded: 1}) {
		t.Fatalf("scrape %+v", f)
	}
	// stopped from a peer the tracker never saw, of a torrent it never saw: no harm.
	r = announce(t, srv, ann{ih: ihB, id: hash20("p-", 3), port: 1, event: "stopped"}, "127.0.0.4:1")
	if r.Complete+r.Incomplete != 0 || srv.Stats().Torrents != 1 {
		t.Fatalf("stopped of an unknown torrent: %+v, %+v", r, srv.Stats())
	}
}

func TestScrape(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	announce(t, srv, ann{ih: ihA, id: hash20("p-", 1), port: 1, left: 0}, "127.0.0.2:1")
	announce(t, srv, ann{ih: ihA, id: hash20("p-", 2), port: 1, left: 5}, "127.0.0.3:1")
	announce(t, srv, ann{ih: ihB, id: hash20("p-", 2), port: 1, left: 5}, "127.0.0.3:1")
	unknown := hash20("unknown-", 0)
	files := scrape(t, srv, "127.0.0.9:1", ihA, ihB, unknown)
	want := map[string]scrapeFile{ihA: {1, 1, 0}, ihB: {0, 1, 0}, unknown: {}}
	if fmt.Sprint(files) != fmt.Sprint(want) {
		t.Fatalf("scrape %v, want %v", files, want)
	}
	all := scrape(t, srv, "127.0.0.9:1") // no info_hash: every torrent
	if len(all) != 2 || all[ihA] != want[ihA] || all[ihB] != want[ihB] {
		t.Fatalf("scrape all: %v", all)
	}
	var many []string
	for i := range tracker.MaxScrapeHashes + 1 {
		many = append(many, "info_hash="+esc(hash20("h", i)))
	}
	for _, c := range []struct{ name, query, want string }{
		{"short info_hash", "info_hash=abc", "invalid info_hash"},
		{"too many", strings.Join(many, "&"), "too many info_hash"},
		{"bad escape", "info_hash=%g0", "malformed query"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := failure(t, get(t, srv, "/scrape", c.query, "127.0.0.9:1")); !strings.Contains(got, c.want) {
				t.Fatalf("failure %q, want %q", got, c.want)
			}
		})
	}
	if st := srv.Stats(); st.Scrapes != 2 {
		t.Fatalf("scrapes counted: %d, want 2", st.Scrapes)
	}
}

// With an allow list only its torrents are served.
func TestAllowList(t *testing.T) {
	allow, err := tracker.ParseAllowList(strings.NewReader(fmt.Sprintf(
		"# the one torrent\n\n  %X  # upper case\n", ihA)))
	if err != nil || len(allow) != 1 || allow[0] != metainfo.Hash([]byte(ihA)) {
		t.Fatalf("ParseAllowList: %v %v", allow, err)
	}
	srv := newServer(t, tracker.Config{Allow: allow})
	announce(t, srv, ann{ih: ihA, id: hash20("p-", 1), port: 1}, "127.0.0.2:1")
	const notAllowed = "torrent not allowed on this tracker"
	if got := failure(t, get(t, srv, "/announce", ann{ih: ihB, id: hash20("p-", 1), port: 1}.query(), "127.0.0.2:1")); got != notAllowed {
		t.Fatalf("announce of another torrent: %q", got)
	}
	if got := failure(t, get(t, srv, "/scrape", "info_hash="+esc(ihA)+"&info_hash="+esc(ihB), "127.0.0.2:1")); got != notAllowed {
		t.Fatalf("scrape of another torrent: %q", got)
	}
	if f := scrape(t, srv, "127.0.0.2:1", ihA); f[ihA].Complete != 1 {
		t.Fatalf("scrape of the allowed torrent: %v", f)
	}
	if st := srv.Stats(); !st.Private || st.Torrents != 1 {
		t.Fatalf("stats: %+v", st)
	}
	for _, bad := range []string{"abc\n", strings.Repeat("g", 40) + "\n", fmt.Sprintf("%x %x\n", ihA, ihB)} {
		if _, err := tracker.ParseAllowList(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseAllowList(%q): %v, want an error naming line 1", bad, err)
		}
	}
}

// A full table refuses newcomers with a failure reason; peers already listed go on.
func TestBounds(t *testing.T) {
	srv := newServer(t, tracker.Config{MaxTorrents: 2, MaxPeers: 3})
	for i := range 2 {
		announce(t, srv, ann{ih: hash20("t", i), id: hash20("p-", 1), port: 1}, "127.0.0.2:1")
	}
	third := ann{ih: hash20("t", 2), id: hash20("p-", 1), port: 1}
	if got := failure(t, get(t, srv, "/announce", third.query(), "127.0.0.2:1")); !strings.Contains(got, "tracker is full") {
		t.Fatalf("third torrent: %q", got)
	}
	// The only peer of torrent 0 leaves: its place goes to the newcomer.
	announce(t, srv, ann{ih: hash20("t", 0), id: hash20("p-", 1), port: 1, event: "stopped"}, "127.0.0.2:1")
	announce(t, srv, third, "127.0.0.2:1")
	if st := srv.Stats(); st.Torrents != 2 {
		t.Fatalf("torrents %d, want 2", st.Torrents)
	}

	ih := hash20("t", 1)
	for i := 3; i <= 4; i++ { // with p-1: three peers
		announce(t, srv, ann{ih: ih, id: hash20("p-", i), port: 1, left: 1}, fmt.Sprintf("127.0.0.%d:1", i))
	}
	fourth := ann{ih: ih, id: hash20("p-", 5), port: 1}
	if got := failure(t, get(t, srv, "/announce", fourth.query(), "127.0.0.5:1")); !strings.Contains(got, "torrent is full") {
		t.Fatalf("fourth peer: %q", got)
	}
	if r := announce(t, srv, ann{ih: ih, id: hash20("p-", 3), port: 1, left: 1}, "127.0.0.3:1"); len(r.compactPeers(t)) != 2 {
		t.Fatalf("a listed peer announcing again: %+v", r)
	}
}

// numwant is capped at MaxNumWant; without it a peer gets DefaultNumWant.
func TestNumWantCap(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	for i := range tracker.MaxNumWant + 20 {
		announce(t, srv, ann{ih: ihA, id: hash20("p-", i), port: 1000 + i, left: 0}, "127.0.0.2:1")
	}
	leech := ann{ih: ihA, id: hash20("leech-", 0), port: 1, left: 1}
	if n := len(announce(t, srv, leech, "127.0.0.3:1").compactPeers(t)); n != tracker.DefaultNumWant {
		t.Fatalf("no numwant: %d peers, want %d", n, tracker.DefaultNumWant)
	}
	leech.extra = "&numwant=100000"
	got := announce(t, srv, leech, "127.0.0.3:1").compactPeers(t)
	if len(got) != tracker.MaxNumWant {
		t.Fatalf("numwant=100000: %d peers, want %d", len(got), tracker.MaxNumWant)
	}
	seen := make(map[netip.AddrPort]bool)
	for _, p := range got {
		if seen[p] {
			t.Fatalf("peer %v given twice", p)
		}
		seen[p] = true
	}
}

// A peer silent for two intervals is no longer handed out, counted or scraped; Run forgets
// torrents left without peers. (In a synctest bubble time.Sleep advances a fake clock at once.)
func TestExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newServer(t, tracker.Config{Interval: 10 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- srv.Run(ctx) }()

		announce(t, srv, ann{ih: ihA, id: hash20("a-", 0), port: 1, left: 0}, "127.0.0.2:1")
		time.Sleep(15 * time.Second)
		announce(t, srv, ann{ih: ihA, id: hash20("b-", 0), port: 1, left: 5}, "127.0.0.3:1")
		r := announce(t, srv, ann{ih: ihB, id: hash20("c-", 0), port: 1, left: 5}, "127.0.0.4:1")
		if r.Incomplete != 1 {
			t.Fatalf("torrent B: %+v", r)
		}
		time.Sleep(6 * time.Second) // a: 21 s silent, expired; b: 6 s
		r = announce(t, srv, ann{ih: ihA, id: hash20("d-", 0), port: 1, left: 5}, "127.0.0.5:1")
		got := r.compactPeers(t)
		if !slices.Equal(got, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.3:1")}) || r.Complete != 0 || r.Incomplete != 2 {
			t.Fatalf("after a expired: peers %v, %+v", got, r)
		}
		if f := scrape(t, srv, "127.0.0.9:1", ihA)[ihA]; f.Complete != 0 {
			t.Fatalf("scrape counts an expired seeder: %+v", f)
		}
		time.Sleep(25 * time.Second) // everyone silent for more than 20 s
		synctest.Wait()
		if st := srv.Stats(); st.Torrents != 0 || st.Peers != 0 {
			t.Fatalf("after everyone expired, Run left %+v", st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// GET /stats is JSON, GET / is an HTML page; neither is a tracker answer.
func TestStatusPages(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	announce(t, srv, ann{ih: ihA, id: hash20("p-", 1), port: 1, left: 0}, "127.0.0.2:1")
	announce(t, srv, ann{ih: ihA, id: hash20("p-", 2), port: 1, left: 3}, "127.0.0.3:1")
	announce(t, srv, ann{ih: ihB, id: hash20("p-", 2), port: 1, left: 3}, "127.0.0.3:1")
	get(t, srv, "/announce", "", "127.0.0.3:1") // one refused
	scrape(t, srv, "127.0.0.3:1", ihA)

	var st tracker.Stats
	body := get(t, srv, "/stats", "", "127.0.0.9:1")
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("/stats %q: %v", body, err)
	}
	a := metainfo.Hash([]byte(ihA)).HexString()
	b := metainfo.Hash([]byte(ihB)).HexString()
	want := tracker.Stats{Torrents: 2, Peers: 3, Seeders: 1, Leechers: 2, Announces: 3, Scrapes: 1, Failures: 1,
		IntervalSeconds: 1800, PerTorrent: []tracker.TorrentStats{{a, 1, 1, 0}, {b, 0, 1, 0}}}
	st.UptimeSeconds = 0
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Fatalf("/stats\n got %+v\nwant %+v", st, want)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	for _, k := range []string{"torrents", "seeders", "leechers", "announces", "scrapes", "per_torrent"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("/stats has no %q", k)
		}
	}

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	page := w.Body.String()
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	for _, s := range []string{"shoal tracker", a, b, "3 announces", "1 seeders", "2 leechers"} {
		if !strings.Contains(page, s) {
			t.Errorf("status page lacks %q:\n%s", s, page)
		}
	}
	for path, code := range map[string]int{"/nothing": 404, "/announce/x": 404} {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != code {
			t.Errorf("GET %s: %d, want %d", path, w.Code, code)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, c := range []tracker.Config{
		{Interval: time.Millisecond},
		{MaxTorrents: -1},
		{MaxPeers: -1},
		{Interval: time.Minute, MinInterval: 2 * time.Minute},
	} {
		if _, err := tracker.New(c); err == nil {
			t.Errorf("New(%+v): no error", c)
		}
	}
}

// anacrolix/torrent's own tracker client, which shoal's nodes use, understands the answers:
// announce and scrape over real sockets, each client sending from its own loopback address.
func TestAnacrolixClient(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ih := metainfo.Hash([]byte(ihA))
	client := func(ip string) trackerClient.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		c, err := trackerClient.NewClient(hs.URL+"/announce", trackerClient.NewClientOpts{Http: trHttp.NewClientOpts{DialContext: d.DialContext}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()
	req := func(id string, port uint16, left int64) trackerClient.AnnounceRequest {
		var pid [20]byte
		copy(pid[:], id)
		return trackerClient.AnnounceRequest{InfoHash: ih, PeerId: pid, Port: port, Left: left, Event: trackerClient.Started, NumWant: -1}
	}
	seed, leech := client("127.0.0.2"), client("127.0.0.3")
	if _, err := seed.Announce(ctx, req(hash20("seed-", 0), 7002, 0), trackerClient.AnnounceOpt{}); err != nil {
		t.Fatal(err)
	}
	resp, err := leech.Announce(ctx, req(hash20("leech-", 0), 7003, -1), trackerClient.AnnounceOpt{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Peers) != 1 || resp.Peers[0].String() != "127.0.0.2:7002" || resp.Seeders != 1 || resp.Leechers != 1 || resp.Interval != 1800 {
		t.Fatalf("announce: %+v", resp)
	}
	sr, err := leech.Scrape(ctx, []infohash.T{ih})
	if err != nil || len(sr) != 1 || sr[0].Seeders != 1 || sr[0].Leechers != 1 {
		t.Fatalf("scrape: %+v %v", sr, err)
	}
	_, err = leech.Announce(ctx, req(hash20("leech-", 0), 0, 1), trackerClient.AnnounceOpt{})
	if err == nil || !strings.Contains(err.Error(), "invalid port") {
		t.Fatalf("announce with port 0: %v, want the failure reason", err)
	}
}
