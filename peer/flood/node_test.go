package flood_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// raw is a hand-driven overlay peer: the test writes and reads its frames.
type raw struct {
	t    *testing.T
	c    net.Conn
	id   [16]byte
	addr netip.AddrPort
	in   chan wire.Message // frames from the node; closed when the link ends
	err  error             // why it ended, once in is closed
}

// dialRaw connects a raw peer at addr to the node at to, and starts reading its frames.
// With hello it sends its Hello first.
func dialRaw(t *testing.T, nw *transport.Network, addr, to netip.AddrPort, id byte, hello bool) *raw {
	t.Helper()
	tr, err := nw.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	c, err := tr.Dial(context.Background(), to)
	if err != nil {
		t.Fatal(err)
	}
	r := &raw{t: t, c: c, id: [16]byte{id}, addr: addr, in: make(chan wire.Message, 256)}
	t.Cleanup(func() { c.Close() })
	go func() {
		defer close(r.in)
		for {
			m, _, err := wire.ReadFrame(c, wire.MaxFrame)
			if err != nil {
				r.err = err
				return
			}
			r.in <- m
		}
	}()
	if hello {
		r.send(wire.Hello{Version: wire.Version, NodeID: r.id, Listen: addr})
		if m := r.next(); m == nil || m.Type() != wire.TypeHello {
			t.Fatalf("the node's first frame: %v", m)
		}
	}
	return r
}

func (r *raw) send(m wire.Message) {
	r.t.Helper()
	if _, err := wire.WriteFrame(r.c, m); err != nil {
		r.t.Fatal(err)
	}
}

// next is the next frame other than a Ping or Pong, or nil once the link has closed.
func (r *raw) next() wire.Message {
	for m := range r.in {
		if t := m.Type(); t != wire.TypePing && t != wire.TypePong {
			return m
		}
	}
	return nil
}

// pending lists the frames already received (no Pings or Pongs), without waiting.
func (r *raw) pending() []wire.Message {
	var ms []wire.Message
	for {
		select {
		case m, ok := <-r.in:
			if !ok {
				return ms
			}
			if t := m.Type(); t != wire.TypePing && t != wire.TypePong {
				ms = append(ms, m)
			}
		default:
			return ms
		}
	}
}

// closed waits for the link to end.
func (r *raw) closed() {
	for range r.in {
	}
}

// newTestNode starts a node on the in-memory network at 127.0.0.1:7000.
func newTestNode(t *testing.T, nw *transport.Network, mod func(*flood.Config)) *flood.Node {
	t.Helper()
	tr, err := nw.Listen(netip.MustParseAddrPort("127.0.0.1:7000"))
	if err != nil {
		t.Fatal(err)
	}
	c := flood.Config{Transport: tr, Seed: 1, Degree: 4, TTL: 3, Logger: testLogger(t)}
	if mod != nil {
		mod(&c)
	}
	n, err := flood.New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func rawAddr(i byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 1, i}), 7000)
}

// A link that sends no Hello is closed at the handshake deadline.
func TestHandshakeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		newTestNode(t, nw, func(c *flood.Config) { c.HandshakeTimeout = 2 * time.Second })
		start := time.Now()
		r := dialRaw(t, nw, rawAddr(1), netip.MustParseAddrPort("127.0.0.1:7000"), 1, false)
		if m := <-r.in; m == nil || m.Type() != wire.TypeHello {
			t.Fatalf("first frame %v", m)
		}
		r.closed()
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("closed after %v, want the 2s handshake deadline", d)
		}
	})
}

// A silent neighbour is dropped after IdleTimeout; one that answers pings stays.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		n := newTestNode(t, nw, func(c *flood.Config) { c.IdleTimeout = 30 * time.Second })
		start := time.Now()
		r := dialRaw(t, nw, rawAddr(1), n.Addr(), 1, true)
		synctest.Wait()
		if n.Neighbours() != 1 {
			t.Fatalf("%d neighbours, want 1", n.Neighbours())
		}
		r.closed()
		if d := time.Since(start); d != 30*time.Second {
			t.Errorf("a silent neighbour was dropped after %v, want 30s", d)
		}
		synctest.Wait()
		if n.Neighbours() != 0 {
			t.Errorf("%d neighbours after the idle timeout", n.Neighbours())
		}
	})
}

// Garbled and oversized frames close the link and are counted; a query that cannot be
// parsed is never forwarded.
func TestGarbledFrames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"unknown type", []byte{0, 0, 0, 1, 99}},
		{"short query", []byte{0, 0, 0, 3, byte(wire.TypeQuery), 1, 2}},
		{"over the cap", []byte{0xff, 0, 0, 0}},
		{"hello twice", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nw := transport.NewNetwork()
				n := newTestNode(t, nw, nil)
				bad := dialRaw(t, nw, rawAddr(1), n.Addr(), 1, true)
				other := dialRaw(t, nw, rawAddr(2), n.Addr(), 2, true)
				synctest.Wait()
				if tc.frame == nil {
					bad.send(wire.Hello{Version: wire.Version, NodeID: bad.id, Listen: bad.addr})
				} else if _, err := bad.c.Write(tc.frame); err != nil {
					t.Fatal(err)
				}
				if m := bad.next(); m != nil && m.Type() != wire.TypeBye {
					t.Errorf("after a bad frame the node sent %v", m)
				}
				bad.closed()
				synctest.Wait()
				if got := other.pending(); len(got) != 0 {
					t.Errorf("the other neighbour got %v", got)
				}
				st := n.FloodStats()
				if want := int64(1); tc.frame != nil && st.Garbled != want {
					t.Errorf("garbled %d, want %d", st.Garbled, want)
				}
				if n.Neighbours() != 1 {
					t.Errorf("%d neighbours, want 1", n.Neighbours())
				}
			})
		})
	}
}

// Queries: a duplicate is dropped and counted, a holder answers, forwarding stops with the
// TTL, a hit goes back along the reverse path, and a neighbour over its rate is cut off.
func TestQueryHandling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		n := newTestNode(t, nw, func(c *flood.Config) { c.QueryRate = 1 })
		a := dialRaw(t, nw, rawAddr(1), n.Addr(), 1, true)
		b := dialRaw(t, nw, rawAddr(2), n.Addr(), 2, true)
		c := dialRaw(t, nw, rawAddr(3), n.Addr(), 3, true)
		synctest.Wait()
		ih := metainfo.Hash{7}
		if err := n.Announce(context.Background(), peer.Announcement{InfoHash: ih, Port: 6881}); err != nil {
			t.Fatal(err)
		}

		q := wire.Query{ID: [16]byte{1}, TTL: 2, InfoHash: ih}
		a.send(q)
		synctest.Wait()
		hit, ok := a.next().(wire.Hit)
		if !ok || hit.ID != q.ID || len(hit.Peers) != 1 || hit.Peers[0] != netip.MustParseAddrPort("127.0.0.1:6881") || hit.Hops != 1 {
			t.Errorf("the holder answered %+v", hit)
		}
		for _, r := range []*raw{b, c} {
			got := r.pending()
			if len(got) != 1 {
				t.Fatalf("neighbour got %v, want the query", got)
			}
			fq := got[0].(wire.Query)
			if fq.ID != q.ID || fq.TTL != 1 || fq.Hops != 1 {
				t.Errorf("forwarded %+v", fq)
			}
		}
		if got := a.pending(); len(got) != 0 {
			t.Errorf("the query went back to its sender: %v", got)
		}

		// A hit from b for q goes back to a, the query's previous hop.
		b.send(wire.Hit{ID: q.ID, InfoHash: ih, Hops: 2, Peers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.9:1")}})
		synctest.Wait()
		if got := a.pending(); len(got) != 1 || got[0].(wire.Hit).Peers[0] != netip.MustParseAddrPort("127.0.0.9:1") {
			t.Errorf("the hit came back as %v", got)
		}

		// The same query again, from c: a duplicate.
		c.send(q)
		synctest.Wait()
		if st := n.FloodStats(); st.DupDropped != 1 {
			t.Errorf("dup dropped %d, want 1", st.DupDropped)
		}
		if got := append(a.pending(), b.pending()...); len(got) != 0 {
			t.Errorf("a duplicate went on: %v", got)
		}

		// TTL 1: answered, not forwarded. a has used its burst (2 at 1 per second) by then.
		time.Sleep(10 * time.Second)
		a.send(wire.Query{ID: [16]byte{2}, TTL: 1, InfoHash: metainfo.Hash{8}})
		synctest.Wait()
		if got := append(b.pending(), c.pending()...); len(got) != 0 {
			t.Errorf("a TTL 1 query went on: %v", got)
		}
		for i := range 5 {
			a.send(wire.Query{ID: [16]byte{3, byte(i)}, TTL: 3, InfoHash: metainfo.Hash{8}})
		}
		synctest.Wait()
		if got := b.pending(); len(got) != 1 {
			t.Errorf("b got %d of 5 queries sent at once at 1 per second (burst 2, one used)", len(got))
		}
		if st := n.FloodStats(); st.RateDropped != 4 {
			t.Errorf("rate dropped %d, want 4", st.RateDropped)
		}
	})
}

// A node refuses links past 2*Degree with addresses to try and a Bye.
func TestRefusePastTwiceDegree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		n := newTestNode(t, nw, func(c *flood.Config) { c.Degree = 1 })
		a := dialRaw(t, nw, rawAddr(1), n.Addr(), 1, true)
		dialRaw(t, nw, rawAddr(2), n.Addr(), 2, true)
		synctest.Wait()
		if n.Neighbours() != 2 {
			t.Fatalf("%d neighbours, want 2", n.Neighbours())
		}
		_ = a
		c := dialRaw(t, nw, rawAddr(3), n.Addr(), 3, false)
		c.send(wire.Hello{Version: wire.Version, NodeID: c.id, Listen: c.addr})
		var pong *wire.Pong
		var bye *wire.Bye
		for m := range c.in {
			switch m := m.(type) {
			case wire.Pong:
				pong = &m
			case wire.Bye:
				bye = &m
			}
		}
		if pong == nil || len(pong.Addrs) == 0 || bye == nil || bye.Reason != "full" {
			t.Errorf("refused with pong %v, bye %v", pong, bye)
		}
		if n.Neighbours() != 2 {
			t.Errorf("%d neighbours, want 2", n.Neighbours())
		}
	})
}

// Lookup streams the peers of hits, closes its channel after LookupTimeout, sends its query
// to the first neighbour when there was none yet, and fails once the node is closed.
func TestLookup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		n := newTestNode(t, nw, func(c *flood.Config) { c.LookupTimeout = 2 * time.Second })
		ih := metainfo.Hash{5}
		// A lookup before the first neighbour waits for it.
		start := time.Now()
		ch, err := n.Lookup(context.Background(), ih)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		a := dialRaw(t, nw, rawAddr(1), n.Addr(), 1, true)
		q, ok := a.next().(wire.Query)
		if !ok || q.InfoHash != ih || q.TTL != 3 || q.Hops != 0 || q.Walk {
			t.Fatalf("the neighbour got %+v", q)
		}
		p := netip.MustParseAddrPort("127.0.0.5:6881")
		a.send(wire.Hit{ID: q.ID, InfoHash: ih, Hops: 1, Peers: []netip.AddrPort{p, p}})
		var got []netip.AddrPort
		for ap := range ch {
			got = append(got, ap)
		}
		if len(got) != 1 || got[0] != p {
			t.Errorf("lookup found %v", got)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("lookup ended after %v, want 2s", d)
		}
		st := n.Stats()
		if st.Lookups != 1 || st.PeersFound != 1 || st.NodesContacted != 1 || st.Sent == 0 || st.Received == 0 {
			t.Errorf("stats %+v", st)
		}

		n.Close()
		if _, err := n.Lookup(context.Background(), ih); !errors.Is(err, flood.ErrClosed) {
			t.Errorf("lookup after close: %v", err)
		}
		a.closed()
		if a.err != io.EOF && !errors.Is(a.err, net.ErrClosed) {
			t.Logf("link ended with %v", a.err)
		}
	})
}
