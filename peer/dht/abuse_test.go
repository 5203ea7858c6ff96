package dht

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
)

// attacker is a bare UDP socket that sends anything to a node and counts what comes back.
type attacker struct {
	pc      net.PacketConn
	to      net.Addr
	replies atomic.Int64 // replies and errors received
	tokens  chan string  // tokens of get_peers replies
	wg      sync.WaitGroup
}

func newAttacker(t *testing.T, ip string, to netip.AddrPort) *attacker {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{pc: pc, to: net.UDPAddrFromAddrPort(to), tokens: make(chan string, 1)}
	a.wg.Go(func() {
		b := make([]byte, 1<<16)
		for {
			n, _, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			var m krpc.Msg
			if bencode.Unmarshal(b[:n], &m) != nil || m.Y == "q" {
				continue
			}
			a.replies.Add(1)
			if m.R != nil && m.R.Token != nil {
				select {
				case a.tokens <- *m.R.Token:
				default:
				}
			}
		}
	})
	t.Cleanup(func() { pc.Close(); a.wg.Wait() })
	return a
}

func (a *attacker) send(t *testing.T, b []byte) {
	if _, err := a.pc.WriteTo(b, a.to); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("attacker: %v", err)
	}
}

// msg bencodes a KRPC-like dictionary.
func msg(m map[string]any) []byte { return bencode.MustMarshal(m) }

func rid(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}

// query is a well-formed query from a random id.
func aQuery(rng *rand.Rand, q string, args map[string]any) []byte {
	a := map[string]any{"id": rid(rng, 20)}
	for k, v := range args {
		a[k] = v
	}
	return msg(map[string]any{"t": rid(rng, 2), "y": "q", "q": q, "a": a})
}

// garbage is one hostile datagram of the given kind (see kinds).
func garbage(rng *rand.Rand, kind string, token string) []byte {
	switch kind {
	case "random bytes":
		return []byte(rid(rng, 1+rng.IntN(1400)))
	case "truncated":
		b := aQuery(rng, "get_peers", map[string]any{"info_hash": rid(rng, 20)})
		return b[:1+rng.IntN(len(b)-1)]
	case "wrong types":
		return [][]byte{
			msg(map[string]any{"t": "aa", "y": "q", "q": "find_node", "a": "not a dict"}),
			msg(map[string]any{"t": "aa", "y": "q", "q": "find_node", "a": map[string]any{"id": "short", "target": rid(rng, 20)}}),
			msg(map[string]any{"t": "aa", "y": "q", "q": "get_peers", "a": map[string]any{"id": rid(rng, 20), "info_hash": 42}}),
			msg(map[string]any{"t": "aa", "y": "q", "q": "announce_peer", "a": map[string]any{"id": rid(rng, 20), "info_hash": rid(rng, 20), "port": "6881", "token": 7}}),
			msg(map[string]any{"t": "aa", "y": "q", "q": "ping", "a": []any{1, 2, 3}}),
			msg(map[string]any{"t": 12, "y": "q", "q": "ping"}),
			msg(map[string]any{"t": "aa", "y": 1, "q": "ping"}),
			msg(map[string]any{"t": "aa", "y": "x", "q": "ping"}),
			msg(map[string]any{"t": strings.Repeat("t", 100), "y": "q", "q": "ping", "a": map[string]any{"id": rid(rng, 20)}}),
			[]byte("li1ei2ee"),
			[]byte("d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:" + rid(rng, 20) + "e1:ad2:id20:" + rid(rng, 20) + "ee"), // "a" twice
		}[rng.IntN(11)]
	case "huge":
		return msg(map[string]any{"t": "aa", "y": "q", "q": "ping", "a": map[string]any{"id": rid(rng, 20)}, "x": strings.Repeat("x", 65000)})
	case "bogus ids":
		return [][]byte{
			aQuery(rng, "find_node", map[string]any{"target": rid(rng, 20)}),
			aQuery(rng, "get_peers", map[string]any{"info_hash": rid(rng, 20)}),
			aQuery(rng, "ping", nil),
			msg(map[string]any{"t": "ab", "y": "q", "q": "find_node"}), // no arguments at all
		}[rng.IntN(4)]
	case "unknown method":
		return [][]byte{
			msg(map[string]any{"t": "aa", "y": "q", "q": "put"}), // the library panics on these
			msg(map[string]any{"t": "aa", "y": "q", "q": "get"}),
			aQuery(rng, "get", map[string]any{"target": rid(rng, 20)}),
			aQuery(rng, rid(rng, 1+rng.IntN(200)), nil),
		}[rng.IntN(4)]
	case "fake reply":
		return msg(map[string]any{"t": rid(rng, 2), "y": "r", "r": map[string]any{"id": rid(rng, 20), "nodes": rid(rng, 26*8)}})
	case "bad token":
		return aQuery(rng, "announce_peer", map[string]any{"info_hash": rid(rng, 20), "port": 1 + rng.IntN(65535), "token": rid(rng, 8)})
	case "valid token":
		return aQuery(rng, "announce_peer", map[string]any{"info_hash": rid(rng, 20), "port": 1 + rng.IntN(65535), "token": token})
	}
	panic(kind)
}

var kinds = []string{"random bytes", "truncated", "wrong types", "huge", "bogus ids", "unknown method", "fake reply", "bad token", "valid token"}

// libLogCounter counts the records of anacrolix/log's global logger, and passes them on to
// the handlers it had (standard error).
type libLogCounter struct {
	n     atomic.Int64
	first atomic.Pointer[string]
	next  []alog.Handler
}

func (c *libLogCounter) Handle(r alog.Record) {
	c.n.Add(1)
	s := r.Msg.String()
	c.first.CompareAndSwap(nil, &s)
	for _, h := range c.next {
		h.Handle(r)
	}
}

// libLog counts what the library writes to its global logger in this test binary. It is put
// in place once, at init, before any of the library's goroutines exist: the library reads
// alog.Default from goroutines that outlive a closed client (its dials, and the logging of
// their errors), so setting it in one test and back in its cleanup raced with the goroutines
// of an earlier test (seen in CI: FuzzPacket against a dial of TestFullNodesFindEachOtherByDHT).
// Tests compare the count before and after what they check.
var libLog = func() *libLogCounter {
	c := &libLogCounter{next: alog.Default.Handlers}
	alog.Default.Handlers = []alog.Handler{c}
	return c
}()

// abuseNet is a shoal node under attack (the victim), two honest shoal nodes joined through
// it, and attackers on other loopback addresses.
type abuseNet struct {
	victim, a, b *Node
}

func newAbuseNet(t *testing.T) *abuseNet {
	t.Helper()
	start := func(ip string, boot []string) *Node {
		n, err := New(Config{Listen: ip + ":0", Bootstrap: boot, QueryTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	v := start("127.0.0.70", []string{})
	boot := []string{v.Addr().String()}
	an := &abuseNet{victim: v, a: start("127.0.0.71", boot), b: start("127.0.0.72", boot)}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 2 {
		for _, n := range []*Node{an.a, an.b} {
			if err := n.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	return an
}

// honest asks the victim, from node a, a ping, a find_node and a get_peers, and says which
// were answered.
func (an *abuseNet) honest(ctx context.Context) (answered [3]bool) {
	to := adht.NewAddr(net.UDPAddrFromAddrPort(an.victim.Addr()))
	for i, q := range []struct {
		q    string
		args krpc.MsgArgs
	}{
		{"ping", krpc.MsgArgs{}},
		{"find_node", krpc.MsgArgs{Target: krpc.RandomNodeID()}},
		{"get_peers", krpc.MsgArgs{InfoHash: krpc.RandomNodeID()}},
	} {
		res := an.a.s.Query(ctx, to, q.q, adht.QueryInput{MsgArgs: q.args})
		answered[i] = res.Err == nil && res.Reply.Y == "r" && res.Reply.R != nil
	}
	return answered
}

// announceFound: node a announces a new torrent, node b looks it up and must find a (the
// victim is the only node in between that stores it for b).
func (an *abuseNet) announceFound(ctx context.Context) error {
	var ih metainfo.Hash
	crand.Read(ih[:])
	if err := an.a.Announce(ctx, peer.Announcement{InfoHash: ih, Port: 7001, Event: peer.EventStarted}); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	ch, err := an.b.Lookup(ctx, ih)
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	want := netip.AddrPortFrom(an.a.Addr().Addr(), 7001)
	var got []netip.AddrPort
	for ap := range ch {
		got = append(got, ap)
	}
	if !slices.Contains(got, want) {
		return fmt.Errorf("lookup found %v, want %v", got, want)
	}
	return nil
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestDroppedCounts: one datagram of each hostile kind, sent slowly, is counted where the
// node dropped or refused it, and the node still answers.
func TestDroppedCounts(t *testing.T) {
	an := newAbuseNet(t)
	at := newAttacker(t, "127.0.0.73", an.victim.Addr())
	rng := rand.New(rand.NewPCG(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	before := an.victim.Dropped()
	send := func(b []byte) { at.send(t, b) }
	send([]byte("not bencode"))
	send([]byte("d1:t2:aa1:y1:q1:q4:ping")) // truncated
	send(msg(map[string]any{"t": "aa", "y": "q", "q": "find_node", "a": "not a dict"}))
	send(msg(map[string]any{"t": strings.Repeat("t", 100), "y": "q", "q": "ping", "a": map[string]any{"id": rid(rng, 20)}}))
	send(garbage(rng, "huge", ""))
	send(msg(map[string]any{"t": "aa", "y": "q", "q": "put"}))
	send(msg(map[string]any{"t": "aa", "y": "q", "q": "get"}))
	send(aQuery(rng, "sample_infohashes", map[string]any{"target": rid(rng, 20)}))
	send(garbage(rng, "fake reply", ""))
	send(msg(map[string]any{"t": "ab", "y": "q", "q": "find_node"}))
	send(garbage(rng, "bad token", ""))
	send(aQuery(rng, "announce_peer", map[string]any{"info_hash": rid(rng, 20), "port": 0, "token": "x", "implied_port": 0}))
	want := Dropped{Garbage: 4, Oversize: 1, Unknown: 3, Unsolicited: 1, BadArgs: 1, BadToken: 2}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := an.victim.Dropped()
		got = Dropped{Garbage: got.Garbage - before.Garbage, Oversize: got.Oversize - before.Oversize,
			Unknown: got.Unknown - before.Unknown, Unsolicited: got.Unsolicited - before.Unsolicited,
			RateLimited: got.RateLimited - before.RateLimited, Overloaded: got.Overloaded - before.Overloaded,
			BadArgs: got.BadArgs - before.BadArgs, BadToken: got.BadToken - before.BadToken, StoreFull: got.StoreFull - before.StoreFull}
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dropped %+v, want %+v", got, want)
		}
		time.Sleep(10 * time.Millisecond) // polling a counter
	}
	if ans := an.honest(ctx); ans != [3]bool{true, true, true} {
		t.Fatalf("honest ping, find_node, get_peers answered: %v", ans)
	}
	// A reply to no query makes nobody a good node (one handed out to others).
	if an.victim.conn.good(addrPortOf(at.pc.LocalAddr()), time.Now(), true) {
		t.Error("a fake reply made the attacker a good node")
	}
}

// TestDHTAbuseSoak: attackers flood the victim with 10,000 datagrams a second of every hostile
// kind (random bytes, truncated and wrong-typed bencode, 64 KiB datagrams, queries from bogus
// ids, unknown methods and get/put without arguments, fake replies, announces with bad tokens
// and with a valid token for random info-hashes) for 3 seconds (60 with SHOAL_SOAK). During
// and after the flood the victim answers an honest node's ping, find_node and get_peers, an
// honest announce is found by an honest lookup, the Go heap stays bounded, the attacker gets
// no more answers than its IP's rate allows, and Dropped says what was refused.
func TestDHTAbuseSoak(t *testing.T) {
	duration, rate := 3*time.Second, 10000
	if os.Getenv("SHOAL_SOAK") != "" {
		duration = 60 * time.Second
	}
	logged := libLog.n.Load()

	an := newAbuseNet(t)
	// Two flooding hosts: the first sends every kind, the second valid-token announces only
	// (from its own IP: its token is bound to it).
	at := newAttacker(t, "127.0.0.74", an.victim.Addr())
	at2 := newAttacker(t, "127.0.0.75", an.victim.Addr())
	rng := rand.New(rand.NewPCG(3, 4))
	token := func(a *attacker) string {
		a.send(t, aQuery(rng, "get_peers", map[string]any{"info_hash": rid(rng, 20)}))
		select {
		case tok := <-a.tokens:
			return tok
		case <-time.After(30 * time.Second):
			t.Fatal("no token for the attacker")
			return ""
		}
	}
	tok, tok2 := token(at), token(at2)
	repliesBefore := at.replies.Load()

	// The datagrams, made beforehand (making them takes longer than sending them): every kind
	// at random, but only one in 500 a 64 KiB one. The valid-token announces come from both
	// flooding hosts, each with its own token; the rest from the first.
	type datagram struct {
		from *attacker
		b    []byte
	}
	runtime.GC()
	heap0 := heapInUse()
	pool := make([]datagram, 20000)
	for i := range pool {
		kind := kinds[rng.IntN(len(kinds))]
		if kind == "huge" && i%50 != 0 {
			kind = "bogus ids"
		}
		pool[i] = datagram{at, garbage(rng, kind, tok)}
		if kind == "valid token" && i%2 == 0 {
			pool[i] = datagram{at2, garbage(rng, kind, tok2)}
		}
	}

	runtime.GC()
	poolBytes := heapInUse() - heap0
	var peak atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var sent atomic.Int64
	started := time.Now()
	floodDone := make(chan struct{})
	// The flood: every 10 ms, as many datagrams as bring the count to rate a second (as far
	// as the sender keeps up), until duration is over.
	wg.Go(func() {
		defer close(floodDone)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; time.Since(started) < duration; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for due := min(int(time.Since(started).Seconds()*float64(rate)), i+rate/50); i < due; i++ {
				d := pool[i%len(pool)]
				d.from.send(t, d.b)
				sent.Add(1)
			}
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-floodDone:
				return
			case <-tick.C:
				if h := heapInUse(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	})

	// An honest node asks during the flood: a ping, a find_node and a get_peers every 100 ms,
	// and every half second it announces a torrent that the other honest node looks up.
	var asked, answered [3]int
	var found, lookups int
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	for flooding := true; flooding; {
		select {
		case <-floodDone:
			flooding = false
			continue
		case <-pace.C:
		}
		qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
		ans := an.honest(qctx)
		for i, ok := range ans {
			asked[i]++
			if ok {
				answered[i]++
			}
		}
		if asked[0]%5 == 1 {
			lookups++
			if err := an.announceFound(qctx); err == nil {
				found++
			} else {
				t.Logf("during the flood: %v", err)
			}
		}
		qcancel()
	}
	wg.Wait()
	elapsed := time.Since(started)
	d := an.victim.Dropped()
	hashes, peers := an.victim.store.size()
	runtime.GC()
	heap1 := heapInUse()
	t.Logf("flood: %d datagrams in %v (%.0f a second) from 2 IPs", sent.Load(), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds())
	t.Logf("dropped: %+v (total %d)", d, d.Total())
	t.Logf("honest queries answered during the flood: ping %d/%d, find_node %d/%d, get_peers %d/%d; announce then lookup found %d/%d",
		answered[0], asked[0], answered[1], asked[1], answered[2], asked[2], found, lookups)
	t.Logf("victim's peer store: %d info-hashes, %d peers", hashes, peers)
	t.Logf("Go heap: %.1f MiB before the flood, peak %.1f MiB during it (%.1f MiB of them the attackers' datagrams), %.1f MiB after it (after GC)",
		float64(heap0)/(1<<20), float64(peak.Load())/(1<<20), float64(poolBytes)/(1<<20), float64(heap1)/(1<<20))

	for i, name := range []string{"ping", "find_node", "get_peers"} {
		if asked[i] == 0 || answered[i]*10 < asked[i]*8 {
			t.Errorf("honest %s answered %d times of %d during the flood, want 80%%", name, answered[i], asked[i])
		}
	}
	if found == 0 || found*10 < lookups*8 {
		t.Errorf("honest announce then lookup found the peer %d times of %d during the flood", found, lookups)
	}
	// The attacker's IP gets at most queryBurst answers, then queryRate a second.
	if got, most := at.replies.Load()-repliesBefore, int64(queryBurst+queryRate*elapsed.Seconds()+50); got > most {
		t.Errorf("the attacker got %d answers in %v, want at most %d (its IP's rate)", got, elapsed.Round(time.Millisecond), most)
	}
	if d.Garbage == 0 || d.Oversize == 0 || d.Unknown == 0 || d.Unsolicited == 0 || d.RateLimited == 0 {
		t.Errorf("dropped %+v: want garbage, oversize, unknown methods, unsolicited replies and rate-limited queries counted", d)
	}
	if most := 2*maxPerIP + lookups; peers > most || hashes > most {
		t.Errorf("the store holds %d info-hashes and %d peers after announces from 2 flooding IPs and %d honest ones, want at most %d", hashes, peers, lookups, most)
	}
	if n := libLog.n.Load() - logged; n > 0 {
		t.Errorf("the library wrote %d lines to standard error during the flood; the first: %s", n, *libLog.first.Load())
	}
	if heap1 > heap0+64<<20 || peak.Load() > heap0+poolBytes+256<<20 {
		t.Errorf("Go heap grew from %d to %d bytes (peak %d)", heap0, heap1, peak.Load())
	}

	// After the flood.
	qctx, qcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer qcancel()
	ans := an.honest(qctx)
	if ans != [3]bool{true, true, true} {
		t.Errorf("after the flood: ping, find_node, get_peers answered %v", ans)
	}
	if err := an.announceFound(qctx); err != nil {
		t.Errorf("after the flood: %v", err)
	}
}

// TestWellFormed: the socket's check refuses values of the wrong type (arguments and return
// values that are not dictionaries, ids that are not 20 bytes, a port that is a string) and
// passes every message the library itself sends.
func TestWellFormed(t *testing.T) {
	tok := "tok"
	port := 1
	for _, m := range []krpc.Msg{
		{T: "aa", Y: "q", Q: "ping", A: &krpc.MsgArgs{ID: krpc.RandomNodeID()}},
		{T: "aa", Y: "q", Q: "announce_peer", A: &krpc.MsgArgs{ID: krpc.RandomNodeID(), InfoHash: krpc.RandomNodeID(), Port: &port, Token: tok, Want: []krpc.Want{"n4"}}},
		{T: "ab", Y: "r", R: &krpc.Return{ID: krpc.RandomNodeID(), Token: &tok, Nodes: krpc.CompactIPv4NodeInfo{{ID: krpc.RandomNodeID(), Addr: krpc.NodeAddr{IP: []byte{1, 2, 3, 4}, Port: 5}}}}},
		{T: "\x00\xff", Y: "e", E: &krpc.Error{Code: 201, Msg: "x"}},
	} {
		if b := bencode.MustMarshal(m); !wellFormed(b) {
			t.Errorf("%q refused", b)
		}
	}
	for _, b := range []string{
		"d1:a10:not a dict1:q4:ping1:t2:aa1:y1:qe",
		"d1:ali1ee1:q4:ping1:t2:aa1:y1:qe",
		"d1:r3:abc1:t2:aa1:y1:re",
		"d1:ad2:id5:short6:target20:01234567890123456789e1:q9:find_node1:t2:aa1:y1:qe",
		"d1:rd2:idi5ee1:t2:aa1:y1:re",
		"d1:ad2:id20:012345678901234567894:port4:6881e1:q13:announce_peer1:t2:aa1:y1:qe",
		"d1:ad2:id20:012345678901234567899:info_hashi42ee1:q9:get_peers1:t2:aa1:y1:qe",
	} {
		if wellFormed([]byte(b)) {
			t.Errorf("%q passed", b)
		}
	}
	if !wellFormed([]byte("d1:ad6:target20:01234567890123456789e1:q9:find_node1:t2:aa1:y1:qe")) {
		t.Error("a query without an id refused (the library takes it)")
	}
}
