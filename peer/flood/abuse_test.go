package flood_test

// The overlay under attack, on loopback TCP: a neighbour flooding queries, frames at and
// over the cap, a thousand connections that never finish the handshake. A small honest
// overlay runs beside the attacker; its searches must still succeed, the victim's memory
// and goroutines must stay within a stated bound, and its counters must show what it
// dropped. The long versions (SHOAL_SOAK set) run the attacks for 30 s and more.

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
	"github.com/shoalp2p/shoal/peer/flood/wire"
)

func transportTCP(ip string) (transport.Transport, error) { return transport.ListenTCP(ip + ":0") }

func soak() bool { return os.Getenv("SHOAL_SOAK") != "" }

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

// victimNet is a small honest overlay on loopback TCP: the victim (nodes[0], degree 4, so
// up to 8 neighbours) and honest-1 others of degree 2 that join through it; the last one
// holds a torrent.
type victimNet struct {
	victim *flood.Node
	nodes  []*flood.Node
	ih     metainfo.Hash
	holder netip.AddrPort // the BitTorrent address its hits carry
}

// abuseIP is the loopback address of honest node i (i < 50) or of attacker address i-50.
func abuseIP(i int) string { return fmt.Sprintf("127.0.%d.%d", 40+i/250, 1+i%250) }

func newVictimNet(t *testing.T, honest int, mod func(*flood.Config)) *victimNet {
	t.Helper()
	v := &victimNet{ih: metainfo.Hash{0xab, 0xcd}}
	for i := range honest {
		tr, err := transportTCP(abuseIP(i))
		if err != nil {
			t.Fatal(err)
		}
		c := flood.Config{Transport: tr, Degree: 2, TTL: 7, LookupTimeout: 2 * time.Second, Logger: testLogger(t)}
		if i == 0 {
			c.Degree = 4
			if mod != nil {
				mod(&c)
			}
		} else {
			c.Bootstrap = []netip.AddrPort{v.victim.Addr()}
		}
		n, err := flood.New(c)
		if err != nil {
			tr.Close()
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		v.nodes = append(v.nodes, n)
		if i == 0 {
			v.victim = n
		}
	}
	holder := v.nodes[honest-1]
	if err := holder.Announce(context.Background(), peer.Announcement{InfoHash: v.ih, Port: 6881}); err != nil {
		t.Fatal(err)
	}
	v.holder = netip.AddrPortFrom(holder.Addr().Addr(), 6881)
	waitFor(t, 60*time.Second, "the honest overlay did not form", func() bool {
		if v.victim.Neighbours() != honest-1 {
			return false
		}
		for _, n := range v.nodes[1:] {
			if n.Neighbours() < min(2, honest-1) {
				return false
			}
		}
		return true
	})
	return v
}

// logStats logs what each honest node counted.
func (v *victimNet) logStats(t *testing.T) {
	for i, n := range v.nodes {
		st := n.FloodStats()
		t.Logf("node %d (%v): %d neighbours; lookups %d, hit %d; rate-dropped %d, dup-dropped %d, forward-dropped %d, relay-dropped %d, overflow %d, hits lost %d, hit-dropped %d",
			i, n.Addr(), st.Neighbours, st.Lookups, st.LookupsHit, st.RateDropped, st.DupDropped, st.ForwardDropped, st.RelayDropped, st.Overflow, st.HitsLost, st.HitDropped)
	}
}

// found runs a lookup from n and reports whether it found the holder (within the
// LookupTimeout, 2 s).
func (v *victimNet) found(n *flood.Node) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := n.Lookup(ctx, v.ih)
	if err != nil {
		return false
	}
	ok := false
	for a := range ch {
		if a == v.holder {
			ok = true
			cancel() // the lookup ends; ch is closed
		}
	}
	return ok
}

// searching runs honest lookups, from the victim and from node 1 in turn, until stop is
// called; stop returns how many were made and how many found the holder.
func (v *victimNet) searching() (stop func() (made, ok int)) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var made, good int
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond) // a lookup at most every 500 ms
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			made++
			if v.found(v.nodes[i%2]) {
				good++
			}
		}
	}()
	return func() (int, int) {
		close(done)
		wg.Wait()
		return made, good
	}
}

// memWatch samples the process's Go heap (in use after a GC) and goroutines while an
// attack runs, against a baseline taken before it, and checks the victim's own bounds at
// each sample.
type memWatch struct {
	baseHeap  uint64
	baseG     int
	peakHeap  int64 // most heap in use after a GC, over the baseline, in bytes
	peakStack int64 // most goroutine stack memory, over the baseline, in bytes
	baseStack uint64
	peakG     int // most goroutines over the baseline
	peakLinks int // the victim's most open links and pending handshakes seen
	peakPend  int
	samples   atomic.Int64
	done      chan struct{}
	wg        sync.WaitGroup
}

// heapAfterGC is the Go heap in use after a collection, and the goroutine stacks.
func heapAfterGC() (heap, stack uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

func watchMem(victim *flood.Node) *memWatch {
	w := &memWatch{baseG: runtime.NumGoroutine(), done: make(chan struct{})}
	w.baseHeap, w.baseStack = heapAfterGC()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			heap, stack := heapAfterGC()
			w.peakHeap = max(w.peakHeap, int64(heap)-int64(w.baseHeap))
			w.peakStack = max(w.peakStack, int64(stack)-int64(w.baseStack))
			w.peakG = max(w.peakG, runtime.NumGoroutine()-w.baseG)
			st := victim.FloodStats()
			w.peakLinks, w.peakPend = max(w.peakLinks, st.Links), max(w.peakPend, st.Pending)
			w.samples.Add(1)
			select {
			case <-tick.C:
			case <-w.done:
				return
			}
		}
	}()
	return w
}

func (w *memWatch) stop() { close(w.done); w.wg.Wait() }

// more waits for k more samples.
func (w *memWatch) more(t *testing.T, k int64) {
	t.Helper()
	s := w.samples.Load()
	waitFor(t, 60*time.Second, "no memory samples", func() bool { return w.samples.Load() >= s+k })
}

func (w *memWatch) String() string {
	return fmt.Sprintf("heap in use after GC +%.2f MiB at most, goroutines +%d (their stacks +%.2f MiB) at most (baseline %.2f MiB, %d goroutines); victim's links at most %d, pending handshakes at most %d",
		float64(w.peakHeap)/(1<<20), w.peakG, float64(w.peakStack)/(1<<20), float64(w.baseHeap)/(1<<20), w.baseG, w.peakLinks, w.peakPend)
}

// tcpPeer is an overlay peer written for the tests: it speaks the wire protocol over a
// TCP connection from an address of its own.
type tcpPeer struct {
	t    *testing.T
	c    net.Conn
	wmu  sync.Mutex
	on   func(wire.Message) // called by the reader for each frame
	done chan struct{}      // closed when the reader ends
	err  error              // why, once done
}

// dialFrom connects from the loopback IP from to the node at to.
func dialFrom(from string, to netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	return d.Dial("tcp", to.String())
}

// joinAs connects a tcpPeer from the IP from to the node at to; with hello it sends its
// Hello (no listen address). on, if set, sees every frame, and Pings are answered (a peer
// with no on writes only what the test writes).
func joinAs(t *testing.T, from string, to netip.AddrPort, hello bool, on func(wire.Message)) *tcpPeer {
	t.Helper()
	c, err := dialFrom(from, to)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpPeer{t: t, c: c, on: on, done: make(chan struct{})}
	t.Cleanup(p.close)
	if hello {
		var id [16]byte
		crand.Read(id[:])
		p.send(wire.Hello{Version: wire.Version, NodeID: id})
	}
	go p.read()
	return p
}

func (p *tcpPeer) read() {
	defer close(p.done)
	for {
		m, _, err := wire.ReadFrame(p.c, wire.MaxFrame)
		if err != nil {
			p.err = err
			return
		}
		if p.on == nil {
			continue
		}
		if ping, ok := m.(wire.Ping); ok {
			p.write(wire.Pong{Nonce: ping.Nonce})
		}
		p.on(m)
	}
}

func (p *tcpPeer) write(m wire.Message) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := wire.WriteFrame(p.c, m)
	return err
}

func (p *tcpPeer) send(m wire.Message) {
	p.t.Helper()
	if err := p.write(m); err != nil {
		p.t.Fatal(err)
	}
}

func (p *tcpPeer) raw(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.c.Write(b)
	return err
}

func (p *tcpPeer) close() {
	p.c.Close()
	<-p.done
}

// finish ends the link gracefully: FIN after the last frame written, then reading on until
// the node closes its end. A plain Close with frames from the node still unread would send
// an RST, and the node's kernel would then throw away what it had not yet read of ours.
func (p *tcpPeer) finish() {
	p.wmu.Lock()
	err := p.c.(*net.TCPConn).CloseWrite()
	p.wmu.Unlock()
	if err != nil {
		p.t.Errorf("half-closing the link: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Errorf("the node did not close the link within 60s of our FIN")
	}
	p.close()
}

// ended reports whether the node has closed the link.
func (p *tcpPeer) ended() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// attackID marks the IDs of the attacker's queries, so an observer tells them apart.
var attackMark = [4]byte{0xa7, 0x7a, 0xc4, 0x01}

func isAttack(id [16]byte) bool { return [4]byte(id[:4]) == attackMark }

// TestQueryFloodSoak: a neighbour sends 10,000 queries a second (random IDs, TTL 7) for
// 4 s (40 s in soak). The victim lets through its rate (DefaultQueryRate, burst twice
// that) and counts the rest in RateDropped; what it forwards of the flood stays within
// that rate; honest lookups made meanwhile find the holder; its memory and goroutines
// stay bounded.
func TestQueryFloodSoak(t *testing.T) {
	const rate = 10000 // queries per second sent
	length := 4 * time.Second
	if soak() {
		length = 40 * time.Second
	}
	v := newVictimNet(t, 6, nil)
	victim := v.victim
	before := victim.Neighbours()

	// An observer neighbour counts the flood's queries the victim forwards to it.
	var forwarded atomic.Int64
	joinAs(t, abuseIP(50), victim.Addr(), true, func(m wire.Message) {
		if q, ok := m.(wire.Query); ok && isAttack(q.ID) {
			forwarded.Add(1)
		}
	})
	atk := joinAs(t, abuseIP(51), victim.Addr(), true, nil)
	waitFor(t, 30*time.Second, "the attacker and the observer did not become neighbours", func() bool {
		return victim.Neighbours() == before+2
	})
	st0 := victim.FloodStats()

	mem := watchMem(victim)
	stopSearch := v.searching()
	start := time.Now()
	var sent int64
	var buf []byte
	q := wire.Query{TTL: 7}
	tick := time.NewTicker(10 * time.Millisecond)
	for time.Since(start) < length {
		<-tick.C
		due := int64(time.Since(start).Seconds()*rate) - sent
		buf = buf[:0]
		for range min(due, rate/10) {
			crand.Read(q.ID[:])
			copy(q.ID[:], attackMark[:])
			crand.Read(q.InfoHash[:])
			buf, _ = wire.AppendFrame(buf, q)
			sent++
		}
		if err := atk.raw(buf); err != nil {
			t.Fatalf("the victim cut the flooding neighbour off after %d queries: %v", sent, err)
		}
	}
	tick.Stop()
	sending := time.Since(start)
	// Ending the link: the victim handles its frames in order, then the FIN, so once the
	// attacker is no longer a neighbour every query it sent has been counted.
	atk.finish()
	waitFor(t, 60*time.Second, "the victim did not see the attacker leave", func() bool {
		return victim.Neighbours() == before+1
	})
	elapsed := time.Since(start)
	made, good := stopSearch()
	mem.stop()

	st := victim.FloodStats()
	dropped := st.RateDropped - st0.RateDropped
	allowed := sent - dropped
	limit := int64(2*flood.DefaultQueryRate) + int64(elapsed.Seconds()*flood.DefaultQueryRate) + 1
	t.Logf("sent %d queries in %v (%.0f/s); the victim let %d through (limit %d: burst %d + %d/s over %v) and rate-dropped %d; it forwarded %d of them to the observer",
		sent, sending.Round(time.Millisecond), float64(sent)/sending.Seconds(), allowed, limit, 2*flood.DefaultQueryRate, flood.DefaultQueryRate,
		elapsed.Round(time.Millisecond), dropped, forwarded.Load())
	t.Logf("honest lookups during the flood: %d of %d found the holder", good, made)
	t.Logf("memory during the flood: %v", mem)
	if float64(sent) < 0.5*rate*sending.Seconds() { // the victim reads slower than that: not the attack asked for
		t.Errorf("the attacker sent only %.0f queries/s", float64(sent)/sending.Seconds())
	}
	if allowed < int64(2*flood.DefaultQueryRate) || allowed > limit {
		t.Errorf("the victim let %d of %d queries through; want %d..%d", allowed, sent, 2*flood.DefaultQueryRate, limit)
	}
	// A neighbour's queries are passed on at a quarter of QueryRate (burst twice that).
	relay := float64(flood.DefaultQueryRate) / 4
	if f, most := forwarded.Load(), int64(2*relay+relay*elapsed.Seconds())+1; f == 0 || f > most {
		t.Errorf("the victim forwarded %d of the flood's queries to a neighbour; want 1..%d", f, most)
	}
	if made == 0 || good != made {
		t.Errorf("%d of %d honest lookups during the flood found the holder", good, made)
		v.logStats(t)
	}
	const heapBound, goroutineBound = 16 << 20, 64
	if mem.peakHeap > heapBound || mem.peakG > goroutineBound {
		t.Errorf("memory during the flood: %v; want at most +%d MiB and +%d goroutines", mem, heapBound>>20, goroutineBound)
	}
}

// frameHeader is a frame header announcing a payload of size bytes.
func frameHeader(size uint32) []byte { return binary.BigEndian.AppendUint32(nil, size) }

// TestFrameCap: a frame of exactly MaxFrame bytes is read (the node waits for its body)
// and, garbage, closes the link as garbled; a header over MaxFrame closes the link at once,
// none of its body read; a first frame longer than a Hello closes the link at once too.
// Then 300 connections each leave a frame at the cap half sent: the node's memory stays
// bounded (it holds at most MaxLinks of them).
func TestFrameCap(t *testing.T) {
	v := newVictimNet(t, 3, func(c *flood.Config) { c.HandshakeTimeout = 30 * time.Second })
	victim := v.victim
	garbled := func() int64 { return victim.FloodStats().Garbled }
	quick := 10 * time.Second // well before the handshake (30 s) and idle (30 s) deadlines

	t.Run("at the cap", func(t *testing.T) {
		g := garbled()
		p := joinAs(t, abuseIP(60), victim.Addr(), true, nil)
		body := make([]byte, wire.MaxFrame)
		body[0] = 99 // no such type
		if err := p.raw(append(frameHeader(wire.MaxFrame), body[:wire.MaxFrame-1]...)); err != nil {
			t.Fatal(err)
		}
		// The frame is within the cap: the node waits for its last byte. (Nothing to wait
		// on here but time: the link must still be open after a while.)
		select {
		case <-p.done:
			t.Fatalf("a frame at the cap closed the link before its body was in: %v", p.err)
		case <-time.After(500 * time.Millisecond):
		}
		if err := p.raw(body[wire.MaxFrame-1:]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, quick, "a garbage frame at the cap did not close the link", p.ended)
		waitFor(t, quick, "not counted as garbled", func() bool { return garbled() == g+1 })
	})
	t.Run("over the cap", func(t *testing.T) {
		g := garbled()
		p := joinAs(t, abuseIP(61), victim.Addr(), true, nil)
		if err := p.raw(frameHeader(wire.MaxFrame + 1)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, quick, "a header over the cap did not close the link at once", p.ended)
		waitFor(t, quick, "not counted as garbled", func() bool { return garbled() == g+1 })
	})
	t.Run("first frame longer than a hello", func(t *testing.T) {
		g := garbled()
		p := joinAs(t, abuseIP(62), victim.Addr(), false, nil)
		if err := p.raw(frameHeader(wire.MaxFrame)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, quick, "a first frame of MaxFrame bytes did not close the link at once", p.ended)
		waitFor(t, quick, "not counted as garbled", func() bool { return garbled() == g+1 })
	})
	t.Run("many frames left half sent", func(t *testing.T) {
		need := uint64(2*300 + 200)
		if lim := raiseFiles(); lim != 0 && lim < need {
			t.Skipf("%d open files allowed, %d needed", lim, need)
		}
		st0 := victim.FloodStats()
		mem := watchMem(victim)
		half := append(frameHeader(wire.MaxFrame), make([]byte, wire.MaxFrame/2)...)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := range 300 {
			c, err := dialFrom(abuseIP(70+i), victim.Addr())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			var id [16]byte
			crand.Read(id[:])
			b, _ := wire.AppendFrame(nil, wire.Hello{Version: wire.Version, NodeID: id})
			c.Write(append(b, half...)) // a refused one may fail: it is closed
		}
		waitFor(t, 60*time.Second, "the victim did not take in or refuse every connection", func() bool {
			st := victim.FloodStats()
			return st.Accepted-st0.Accepted+st.Refused-st0.Refused == 300
		})
		mem.more(t, 5)
		mem.stop()
		st := victim.FloodStats()
		t.Logf("300 connections, each a hello and half a frame at the cap: %v; refused %d", mem, st.Refused)
		if mem.peakHeap > 8<<20 || mem.peakLinks > 3*4+flood.DefaultMaxPending {
			t.Errorf("%v: want at most +8 MiB and %d links", mem, 3*4+flood.DefaultMaxPending)
		}
		if !v.found(v.nodes[1]) {
			t.Error("an honest lookup failed")
		}
	})
}

// TestHalfOpenSoak: 1,000 connections that never send a byte and 1,000 that send part of
// a frame header, opened at once from 250 loopback IPs (ten such waves in a row in soak). The
// victim holds at most MaxPending of them, refuses the rest at accept (Refused), reaps
// those it took at the handshake deadline (HandshakeTimeouts), keeps its neighbours, and
// an honest lookup succeeds meanwhile; its memory and goroutines stay bounded.
func TestHalfOpenSoak(t *testing.T) {
	each := 1000
	const handshake = 3 * time.Second
	if lim := raiseFiles(); lim != 0 && uint64(2*each+300) > lim {
		each = (int(lim) - 300) / 2
		t.Logf("open files limited to %d: %d connections of each kind", lim, each)
		if each < 2*flood.DefaultMaxPending {
			t.Skip("too few open files for the attack")
		}
	}
	waves := 1
	if soak() {
		waves = 10
	}
	v := newVictimNet(t, 6, func(c *flood.Config) { c.HandshakeTimeout = handshake })
	victim := v.victim
	nbrs := victim.Neighbours()
	st0 := victim.FloodStats()
	mem := watchMem(victim)
	stopSearch := v.searching()
	for w := range waves {
		start := time.Now()
		var conns []net.Conn
		for i := range 2 * each {
			c, err := dialFrom(abuseIP(50+i%250), victim.Addr())
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			conns = append(conns, c)
			if i%2 == 1 {
				c.Write([]byte{0, 0}) // half a header; refused ones may fail
			}
		}
		opened := time.Since(start)
		// Each connection ends: refused at once, or reaped at the handshake deadline. The
		// node's Hello, if it took the connection, comes first.
		reaped := 0
		for _, c := range conns {
			c.SetReadDeadline(start.Add(opened + handshake + 10*time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("a connection the victim took was still open %v after it was made (the handshake deadline is %v)", time.Since(start), handshake)
			}
			reaped++
			c.Close()
		}
		t.Logf("wave %d: %d connections opened in %v, all closed by the victim %v after the first",
			w, reaped, opened.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	waitFor(t, 30*time.Second, "the victim's pending handshakes did not drain", func() bool {
		return victim.FloodStats().Pending == 0
	})
	made, good := stopSearch()
	mem.stop()
	st := victim.FloodStats()
	refused, timeouts := st.Refused-st0.Refused, st.HandshakeTimeouts-st0.HandshakeTimeouts
	total := int64(2 * each * waves)
	t.Logf("%d half-open connections: refused %d at accept, %d reaped at the handshake deadline, %d otherwise; %d of %d honest lookups found the holder",
		total, refused, timeouts, total-refused-timeouts, good, made)
	t.Logf("memory during the attack: %v", mem)
	if mem.peakPend > flood.DefaultMaxPending {
		t.Errorf("the victim held %d handshakes at once, the most is %d", mem.peakPend, flood.DefaultMaxPending)
	}
	if refused < total-int64(waves*4*flood.DefaultMaxPending) || refused+timeouts != total {
		t.Errorf("refused %d and reaped %d of %d", refused, timeouts, total)
	}
	if victim.Neighbours() != nbrs {
		t.Errorf("the victim has %d neighbours, it had %d", victim.Neighbours(), nbrs)
	}
	if made == 0 || good != made {
		t.Errorf("%d of %d honest lookups during the attack found the holder", good, made)
	}
	const heapBound, goroutineBound = 16 << 20, flood.DefaultMaxPending + 64
	if mem.peakHeap > heapBound || mem.peakG > goroutineBound {
		t.Errorf("memory during the attack: %v; want at most +%d MiB and +%d goroutines", mem, heapBound>>20, goroutineBound)
	}
}

// TestPendingPerIP: 40 silent connections from one IP: the node holds at most
// MaxPendingPerIP of them and refuses the rest, while another IP still gets in.
func TestPendingPerIP(t *testing.T) {
	v := newVictimNet(t, 2, func(c *flood.Config) { c.HandshakeTimeout = 30 * time.Second })
	victim := v.victim
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 40 {
		c, err := dialFrom(abuseIP(90), victim.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, 30*time.Second, "the victim did not refuse past MaxPendingPerIP", func() bool {
		st := victim.FloodStats()
		return st.Refused == 40-flood.DefaultMaxPendingPerIP && st.Pending == flood.DefaultMaxPendingPerIP
	})
	p := joinAs(t, abuseIP(91), victim.Addr(), true, nil)
	waitFor(t, 30*time.Second, "a peer from another IP did not get in", func() bool { return victim.Neighbours() == 2 })
	_ = p
}
