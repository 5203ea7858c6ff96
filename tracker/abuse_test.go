package tracker_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/shoalp2p/shoal/tracker"
)

// serve runs srv as shoal tracker does (HTTPServer on Listener, and Run) on 127.0.0.1, until
// the test ends; it returns the base URL.
func serve(t testing.TB, srv *tracker.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer(nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = hs.Serve(srv.Listener(l)) })
	wg.Go(func() { _ = srv.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		hs.Close()
		wg.Wait()
	})
	return "http://" + l.Addr().String()
}

// client is an HTTP client whose connections come from ip.
func client(ip string, conns int) (*http.Client, *http.Transport) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 30 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: conns, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, tr
}

// checkAnswer decodes a tracker's answer to an announce from self: either a failure reason
// or an interval and compact peers (never self). It returns the failure reason, or an error
// if the answer is neither.
func checkAnswer(body []byte, self netip.AddrPort) (string, error) {
	var m map[string]any
	if err := bencode.Unmarshal(body, &m); err != nil {
		return "", fmt.Errorf("answer %q is not bencode: %v", body, err)
	}
	if reason, ok := m["failure reason"].(string); ok {
		if reason == "" || len(m) != 1 {
			return "", fmt.Errorf("failure answer %q", body)
		}
		return reason, nil
	}
	peers, ok := m["peers"].(string)
	if _, hasInterval := m["interval"].(int64); !hasInterval || !ok || len(peers)%6 != 0 {
		return "", fmt.Errorf("answer %q: neither a failure nor compact peers", body)
	}
	for b := []byte(peers); len(b) > 0; b = b[6:] {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), binary.BigEndian.Uint16(b[4:6]))
		if ap == self || !ap.Addr().IsLoopback() {
			return "", fmt.Errorf("answer to %v lists %v", self, ap)
		}
	}
	return "", nil
}

func heapAlloc(gc bool) uint64 {
	if gc {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestAnnounceLoadSoak: a load generator on loopback, 100 concurrent announcers for 3 seconds
// (with SHOAL_SOAK, 1,000 of them for 100,000 announces), each from its own 127.0.x.y address,
// announcing 4 ports each to a hot torrent and to 1,500 others (more than the tracker's
// 1,000). Every request gets status 200 and a valid bencoded answer (peers, or "tracker is
// full"/"torrent is full"), never an error; the table stays within its bounds throughout;
// the Go heap stays bounded; once the load stops, every peer expires (interval 2 s) and Run
// forgets every torrent.
func TestAnnounceLoadSoak(t *testing.T) {
	announcers, total, duration := 100, 0, 3*time.Second
	if os.Getenv("SHOAL_SOAK") != "" {
		announcers, total, duration = 1000, 100000, 10*time.Minute
	}
	const torrents = 1500
	srv := newServer(t, tracker.Config{Interval: 2 * time.Second})
	base := serve(t, srv)
	heap0 := heapAlloc(true)

	var (
		sent, ok, trackerFull, torrentFull atomic.Int64
		errMu                              sync.Mutex
		errs                               []string
		errCount                           atomic.Int64
	)
	fail := func(format string, a ...any) {
		errCount.Add(1)
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	started := time.Now()
	var load sync.WaitGroup
	for i := range announcers {
		ip := netip.AddrFrom4([4]byte{127, 0, byte(1 + i/250), byte(1 + i%250)})
		c, tr := client(ip.String(), 1)
		defer tr.CloseIdleConnections()
		load.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			id := hash20(fmt.Sprintf("a%d-", i), 0)
			for round := 0; ctx.Err() == nil; round++ {
				if total > 0 && sent.Add(1) > int64(total) {
					return
				}
				ih := hash20("hot-", 0)
				if rng.IntN(4) != 0 {
					ih = hash20("t-", rng.IntN(torrents))
				}
				port := 10000 + round%4
				left := int64(rng.IntN(2) * 1000)
				event := []string{"started", "", "", "completed", "", "stopped"}[rng.IntN(6)]
				q := ann{ih: ih, id: id, port: port, left: left, event: event, extra: "&numwant=" + fmt.Sprint(rng.IntN(300))}.query()
				resp, err := c.Get(base + "/announce?" + q)
				if err != nil {
					if ctx.Err() != nil && total == 0 {
						return // the load's time is up
					}
					fail("announce from %v: %v", ip, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					fail("announce from %v: status %d, %v", ip, resp.StatusCode, err)
					return
				}
				if total == 0 {
					sent.Add(1)
				}
				reason, err := checkAnswer(body, netip.AddrPortFrom(ip, uint16(port)))
				switch {
				case err != nil:
					fail("%v", err)
				case reason == "":
					ok.Add(1)
				case strings.HasPrefix(reason, "tracker is full"):
					trackerFull.Add(1)
				case strings.HasPrefix(reason, "torrent is full"):
					torrentFull.Add(1)
				default:
					fail("announce %q from %v: failure %q", q, ip, reason)
				}
			}
		})
	}
	// Watch the table and the heap while the load runs.
	var peak uint64
	var maxTorrents, maxPeers int
	loadDone := make(chan struct{})
	go func() { load.Wait(); close(loadDone) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for watching := true; watching; {
		select {
		case <-loadDone:
			watching = false
		case <-tick.C:
		}
		peak = max(peak, heapAlloc(false))
		st := srv.Stats()
		maxTorrents = max(maxTorrents, st.Torrents)
		for _, ts := range st.PerTorrent {
			maxPeers = max(maxPeers, ts.Seeders+ts.Leechers)
		}
	}
	elapsed := time.Since(started)
	full := srv.Stats()
	heapLoaded := heapAlloc(true)
	t.Logf("%d announcers: %d announces in %v (%.0f a second): %d answered with peers, %d \"tracker is full\", %d \"torrent is full\", %d errors",
		announcers, ok.Load()+trackerFull.Load()+torrentFull.Load(), elapsed.Round(time.Millisecond),
		float64(ok.Load()+trackerFull.Load()+torrentFull.Load())/elapsed.Seconds(), ok.Load(), trackerFull.Load(), torrentFull.Load(), errCount.Load())
	t.Logf("table: at most %d torrents and %d peers in one torrent seen; at the end %d torrents, %d peers; failures counted %d",
		maxTorrents, maxPeers, full.Torrents, full.Peers, full.Failures)
	t.Logf("Go heap (test process, clients included): %.1f MiB before, peak %.1f MiB, %.1f MiB after the load (after GC)",
		float64(heap0)/(1<<20), float64(peak)/(1<<20), float64(heapLoaded)/(1<<20))
	if n := errCount.Load(); n > 0 {
		t.Errorf("%d errors; first: %q", n, errs)
	}
	if ok.Load() == 0 {
		t.Fatal("no announce answered")
	}
	if maxTorrents > tracker.DefaultMaxTorrents || maxPeers > tracker.DefaultMaxPeers {
		t.Errorf("table grew to %d torrents, %d peers in one: past its bounds", maxTorrents, maxPeers)
	}
	if full.Failures != trackerFull.Load()+torrentFull.Load() {
		t.Errorf("Stats.Failures %d, want the %d refusals counted", full.Failures, trackerFull.Load()+torrentFull.Load())
	}
	if heapLoaded > heap0+256<<20 || peak > heap0+512<<20 {
		t.Errorf("heap grew from %d to %d bytes (peak %d)", heap0, heapLoaded, peak)
	}

	// Every peer expires after two intervals; Run then forgets the torrents.
	deadline := time.Now().Add(60 * time.Second)
	for st := srv.Stats(); st.Peers != 0 || st.Torrents != 0; st = srv.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the load: %d torrents, %d peers left", st.Torrents, st.Peers)
		}
		time.Sleep(100 * time.Millisecond) // polling the table
	}
	t.Logf("every peer expired and every torrent was forgotten %v after the load; heap %.1f MiB (after GC)",
		time.Since(started.Add(elapsed)).Round(100*time.Millisecond), float64(heapAlloc(true))/(1<<20))
}

// TestDefaultBounds: with the default bounds, over HTTP and concurrently, the 1,001st
// torrent and the 2,001st peer of a torrent are refused with a failure reason, and each
// refusal is counted.
func TestDefaultBounds(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	base := serve(t, srv)
	const extra = 50
	var refused atomic.Int64
	run := func(n int, what func(i int) (ann, string)) {
		var wg sync.WaitGroup
		work := make(chan int)
		for w := range 50 {
			c, tr := client(fmt.Sprintf("127.0.3.%d", 1+w), 1)
			defer tr.CloseIdleConnections()
			wg.Go(func() {
				for i := range work {
					a, full := what(i)
					resp, err := c.Get(base + "/announce?" + a.query())
					if err != nil {
						t.Error(err)
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					reason, err := checkAnswer(body, netip.AddrPort{})
					switch {
					case err != nil:
						t.Error(err)
					case reason != "" && strings.HasPrefix(reason, full):
						refused.Add(1)
					case reason != "":
						t.Errorf("failure %q", reason)
					}
				}
			})
		}
		for i := range n {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	run(tracker.DefaultMaxTorrents+extra, func(i int) (ann, string) {
		return ann{ih: hash20("bound-", i), id: hash20("p-", 0), port: 1}, "tracker is full"
	})
	if st := srv.Stats(); st.Torrents != tracker.DefaultMaxTorrents || refused.Load() != extra || st.Failures != extra {
		t.Fatalf("%d torrents announced: %d tracked, %d refused, %d failures counted; want %d, %d, %d",
			tracker.DefaultMaxTorrents+extra, st.Torrents, refused.Load(), st.Failures, tracker.DefaultMaxTorrents, extra, extra)
	}
	refused.Store(0)
	ih := hash20("bound-", 0)
	run(tracker.DefaultMaxPeers-1+extra, func(i int) (ann, string) { // with the one peer already there
		return ann{ih: ih, id: hash20("q-", i), port: 2 + i}, "torrent is full"
	})
	st := srv.Stats()
	if st.PerTorrent[0].Seeders+st.PerTorrent[0].Leechers != tracker.DefaultMaxPeers || refused.Load() != extra || st.Failures != 2*extra {
		t.Fatalf("%d peers announced: %d listed, %d refused, %d failures counted; want %d, %d, %d", tracker.DefaultMaxPeers+extra,
			st.PerTorrent[0].Seeders+st.PerTorrent[0].Leechers, refused.Load(), st.Failures, tracker.DefaultMaxPeers, extra, 2*extra)
	}
}

// halfOpen opens n connections to addr that send the start of a request and never finish it.
func halfOpen(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := range n {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 4, byte(1+i%250))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, "GET /announce?info_hash="); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	return conns
}

// closedByServer waits until the server has closed every one of conns (a read returns EOF or
// a reset), reading whatever it sent first, until deadline; it says how many it closed.
func closedByServer(conns []net.Conn, deadline time.Time) int {
	var closed atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(deadline)
			_, err := io.Copy(io.Discard, c)
			if ne := net.Error(nil); err == nil || !errors.As(err, &ne) || !ne.Timeout() {
				closed.Add(1)
			}
		})
	}
	wg.Wait()
	return int(closed.Load())
}

// TestSlowloris: 1,000 connections that never finish their request, 100 of them trickling a
// byte every 100 ms, do not keep the tracker from answering an honest announce, and the
// tracker closes every one of them once its header timeout (here 2 s) is up.
func TestSlowloris(t *testing.T) {
	const timeout = 2 * time.Second
	srv := newServer(t, tracker.Config{HeaderTimeout: timeout})
	base := serve(t, srv)
	started := time.Now()
	conns := halfOpen(t, strings.TrimPrefix(base, "http://"), 1000)
	opened := time.Now()
	// 100 of them trickle a byte every 100 ms.
	stop := make(chan struct{})
	var trickle sync.WaitGroup
	trickle.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, c := range conns[:100] {
				c.Write([]byte("a"))
			}
		}
	})
	defer func() { close(stop); trickle.Wait() }()

	c, tr := client("127.0.0.2", 1)
	defer tr.CloseIdleConnections()
	resp, err := c.Get(base + "/announce?" + ann{ih: ihA, id: hash20("honest-", 0), port: 6881, left: 1}.query())
	if err != nil {
		t.Fatalf("honest announce with 1,000 half-open connections: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if reason, err := checkAnswer(body, netip.MustParseAddrPort("127.0.0.2:6881")); err != nil || reason != "" {
		t.Fatalf("honest announce: %q %v", reason, err)
	}
	t.Logf("1,000 half-open connections opened in %v; an honest announce answered %v later",
		opened.Sub(started).Round(time.Millisecond), time.Since(opened).Round(time.Millisecond))

	if n := closedByServer(conns, started.Add(timeout+30*time.Second)); n != len(conns) {
		t.Fatalf("%d of %d half-open connections closed by the tracker %v after they opened", n, len(conns), time.Since(started).Round(time.Millisecond))
	}
	t.Logf("the tracker closed all 1,000 half-open connections within %v (header timeout %v)", time.Since(started).Round(time.Millisecond), timeout)
}

// TestConnLimit: past Config.MaxConns connections open at once, the tracker closes new ones
// at once and counts them; once the others are gone it answers again.
func TestConnLimit(t *testing.T) {
	const limit = 100
	srv := newServer(t, tracker.Config{MaxConns: limit, HeaderTimeout: 2 * time.Second})
	base := serve(t, srv)
	conns := halfOpen(t, strings.TrimPrefix(base, "http://"), 2*limit)
	// The refused ones are closed at once; the others when their header timeout is up.
	deadline := time.Now().Add(30 * time.Second)
	for srv.Stats().ConnsRefused < limit {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections refused, want %d", srv.Stats().ConnsRefused, limit)
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	if n := srv.Stats().ConnsRefused; n != limit {
		t.Fatalf("%d connections refused, want %d", n, limit)
	}
	closedByServer(conns, time.Now().Add(30*time.Second))
	c, tr := client("127.0.0.2", 1)
	defer tr.CloseIdleConnections()
	resp, err := c.Get(base + "/announce?" + ann{ih: ihA, id: hash20("honest-", 0), port: 6881, left: 1}.query())
	if err != nil {
		t.Fatalf("announce once the connections are gone: %v", err)
	}
	resp.Body.Close()
}

// TestHugeRequest: a request line or headers over MaxHeaderBytes are refused by net/http
// (431) and the connection closed; a query over MaxQueryBytes but within it gets a failure
// reason.
func TestHugeRequest(t *testing.T) {
	srv := newServer(t, tracker.Config{})
	base := serve(t, srv)
	addr := strings.TrimPrefix(base, "http://")
	good := ann{ih: ihA, id: hash20("p-", 0), port: 1}.query()
	for _, c := range []struct {
		name, req string
		status    int
		reason    string
	}{
		{"huge query", "GET /announce?" + good + "&x=" + strings.Repeat("x", 1<<20) + " HTTP/1.1\r\nHost: t\r\n\r\n", 431, ""},
		{"huge header", "GET /announce?" + good + " HTTP/1.1\r\nHost: t\r\nX: " + strings.Repeat("x", 1<<20) + "\r\n\r\n", 431, ""},
		{"long query", "GET /announce?" + good + "&x=" + strings.Repeat("x", tracker.MaxQueryBytes) + " HTTP/1.1\r\nHost: t\r\n\r\n", 200, "query string too long"},
		{"post", "POST /announce?" + good + " HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 200, "not a GET request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(30 * time.Second))
			go io.WriteString(conn, c.req) // the server may answer and close before reading it all
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %q", resp.StatusCode, c.status, body)
			}
			if c.reason != "" {
				if got := failure(t, body); !strings.HasPrefix(got, c.reason) {
					t.Fatalf("failure %q, want %q", got, c.reason)
				}
			}
		})
	}
}

// TestPeerMemory measures what a listed peer costs (20,000 of them over 20 torrents), to
// state the memory bound of a full table: DefaultMaxTorrents × DefaultMaxPeers peers.
func TestPeerMemory(t *testing.T) {
	const torrents, perTorrent = 20, 1000
	srv := newServer(t, tracker.Config{})
	for i := range torrents {
		ih := hash20("mem-", i)
		for j := range perTorrent {
			from := fmt.Sprintf("127.%d.%d.%d:1", 1+j/65536, j/256%256, j%256)
			if r := decodeAnnounce(t, get(t, srv, "/announce", ann{ih: ih, id: hash20("p-", j), port: 6881, left: 1, extra: "&numwant=0"}.query(), from)); r.Failure != "" {
				t.Fatal(r.Failure)
			}
		}
	}
	if st := srv.Stats(); st.Peers != torrents*perTorrent {
		t.Fatalf("%d peers listed, want %d", st.Peers, torrents*perTorrent)
	}
	// The table's size: the heap with the server, less the heap once it is gone (measured
	// this way round, what earlier tests left behind does not count).
	with := heapAlloc(true)
	runtime.KeepAlive(srv)
	srv = nil
	without := heapAlloc(true)
	size := int64(with) - int64(without)
	per := float64(size) / (torrents * perTorrent)
	full := per * tracker.DefaultMaxTorrents * tracker.DefaultMaxPeers
	t.Logf("%d peers: %.1f MiB of heap, %.0f bytes a peer; a full table (%d torrents of %d peers) would take about %.0f MiB",
		torrents*perTorrent, float64(size)/(1<<20), per, tracker.DefaultMaxTorrents, tracker.DefaultMaxPeers, full/(1<<20))
	if per <= 0 || per > 1024 {
		t.Errorf("%.0f bytes a peer", per)
	}
}
