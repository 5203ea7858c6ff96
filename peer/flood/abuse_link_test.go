package flood_test

// What one hostile neighbour can make a node do, on loopback TCP: keep a refused link open,
// have its pings answered, fill the node's book with addresses of its choosing, push hits
// through it, or take up what the node forwards to its other neighbours.

import (
	"context"
	crand "crypto/rand"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// TestRefusedLinkEnds: a peer refused (the node is full) that keeps its link open by
// sending frames is cut off at the handshake deadline, its frames ignored.
func TestRefusedLinkEnds(t *testing.T) {
	const handshake = 2 * time.Second
	v := newVictimNet(t, 1, func(c *flood.Config) { c.Degree = 1; c.HandshakeTimeout = handshake })
	victim := v.victim
	keep := func(wire.Message) {}
	joinAs(t, abuseIP(100), victim.Addr(), true, keep)
	joinAs(t, abuseIP(101), victim.Addr(), true, keep)
	waitFor(t, 30*time.Second, "two neighbours did not join", func() bool { return victim.Neighbours() == 2 })

	var bye atomic.Bool
	p := joinAs(t, abuseIP(102), victim.Addr(), true, func(m wire.Message) {
		if b, ok := m.(wire.Bye); ok && b.Reason == "full" {
			bye.Store(true)
		}
	})
	waitFor(t, 30*time.Second, "the third peer was not refused", bye.Load)
	refused := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for victim.FloodStats().Links > 2 { // the node's two neighbours and this link
		if time.Since(refused) > handshake+10*time.Second {
			t.Fatalf("a refused peer sending a ping every 100 ms kept its link open %v", time.Since(refused))
		}
		p.write(wire.Ping{Nonce: 1})
		<-tick.C
	}
	t.Logf("a refused peer that kept sending was cut off %v after its refusal; ignored frames %d",
		time.Since(refused).Round(time.Millisecond), victim.FloodStats().Ignored)
	if victim.FloodStats().Ignored == 0 {
		t.Error("no ignored frame counted")
	}
}

// TestPingFlood: a neighbour sending 500 pings at once gets pongs only at the ping rate;
// the rest are counted in PingDropped.
func TestPingFlood(t *testing.T) {
	v := newVictimNet(t, 1, nil)
	victim := v.victim
	var pongs atomic.Int64
	p := joinAs(t, abuseIP(110), victim.Addr(), true, func(m wire.Message) {
		if _, ok := m.(wire.Pong); ok {
			pongs.Add(1)
		}
	})
	waitFor(t, 30*time.Second, "no neighbour", func() bool { return victim.Neighbours() == 1 })
	start := time.Now()
	var buf []byte
	for i := range 500 {
		buf, _ = wire.AppendFrame(buf, wire.Ping{Nonce: uint64(i + 1)})
	}
	if err := p.raw(buf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the pings were not all handled", func() bool {
		st := victim.FloodStats()
		return st.PingDropped+st.Overflow+pongs.Load() >= 500
	})
	elapsed := time.Since(start)
	most := int64(8 + 4*elapsed.Seconds() + 1) // burst 8, 4 a second
	st := victim.FloodStats()
	t.Logf("500 pings at once: %d answered in %v (at most %d), %d dropped", pongs.Load(), elapsed.Round(time.Millisecond), most, st.PingDropped)
	if pongs.Load() > most || st.PingDropped < 500-most {
		t.Errorf("%d pings answered, %d dropped; want at most %d answered", pongs.Load(), st.PingDropped, most)
	}
}

// TestPongFlood: pongs nobody asked for, each with 32 addresses, are not learned (one
// unasked pong is: a node that refuses a link sends addresses to try).
func TestPongFlood(t *testing.T) {
	v := newVictimNet(t, 1, nil)
	victim := v.victim
	p := joinAs(t, abuseIP(120), victim.Addr(), true, nil)
	waitFor(t, 30*time.Second, "no neighbour", func() bool { return victim.Neighbours() == 1 })
	var buf []byte
	for i := range 50 {
		var addrs []netip.AddrPort
		for j := range wire.MaxAddrs {
			addrs = append(addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 99, byte(j + 1)}), uint16(1000+i)))
		}
		buf, _ = wire.AppendFrame(buf, wire.Pong{Nonce: uint64(1000 + i), Addrs: addrs})
	}
	if err := p.raw(buf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "unasked pongs not ignored", func() bool { return victim.FloodStats().PongIgnored >= 49 })
}

// TestHitFlood: a neighbour that answers a query with 1,500 hits gets only its hit rate
// passed back to the query's origin; hits for queries the node never saw are dropped.
func TestHitFlood(t *testing.T) {
	v := newVictimNet(t, 1, nil)
	victim := v.victim
	var hits atomic.Int64
	origin := joinAs(t, abuseIP(130), victim.Addr(), true, func(m wire.Message) {
		if _, ok := m.(wire.Hit); ok {
			hits.Add(1)
		}
	})
	got := make(chan wire.Query, 16)
	atk := joinAs(t, abuseIP(131), victim.Addr(), true, func(m wire.Message) {
		if q, ok := m.(wire.Query); ok {
			select {
			case got <- q:
			default:
			}
		}
	})
	waitFor(t, 30*time.Second, "no neighbours", func() bool { return victim.Neighbours() == 2 })
	q := wire.Query{ID: [16]byte{1, 2, 3}, TTL: 3, InfoHash: [20]byte{9}}
	origin.send(q)
	select {
	case fq := <-got:
		if fq.ID != q.ID {
			t.Fatalf("forwarded %+v", fq)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the query was not forwarded")
	}
	var buf []byte
	for range 10 { // for queries the node never saw
		var id [16]byte
		crand.Read(id[:])
		buf, _ = wire.AppendFrame(buf, wire.Hit{ID: id, InfoHash: q.InfoHash, Hops: 1})
	}
	if err := atk.raw(buf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "hits for unknown queries not counted lost", func() bool { return victim.FloodStats().HitsLost == 10 })
	start := time.Now()
	buf = buf[:0]
	for i := range 1500 {
		buf, _ = wire.AppendFrame(buf, wire.Hit{ID: q.ID, InfoHash: q.InfoHash, Hops: 1,
			Peers: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 98, 1}), uint16(i+1))}})
	}
	if err := atk.raw(buf); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the hits were not all handled", func() bool {
		st := victim.FloodStats()
		return st.HitDropped+st.Overflow+hits.Load() >= 1500
	})
	elapsed := time.Since(start)
	rate := float64(10 * flood.DefaultQueryRate) // hits: 10 times the query rate, burst twice that
	most := int64(2*rate + rate*elapsed.Seconds() + 1)
	st := victim.FloodStats()
	t.Logf("1,500 hits for one query: %d passed back in %v (at most %d), %d dropped, %d lost to a full queue", hits.Load(), elapsed.Round(time.Millisecond), most, st.HitDropped, st.Overflow)
	if hits.Load() > most || st.HitDropped == 0 {
		t.Errorf("%d hits passed back, %d dropped; want at most %d", hits.Load(), st.HitDropped, most)
	}
}

// TestForwardBudget: three neighbours flood queries; what the node forwards to a fourth
// stays within the link's forwarding rate (half of QueryRate), and the node's own lookups
// still all reach it.
func TestForwardBudget(t *testing.T) {
	v := newVictimNet(t, 1, nil)
	victim := v.victim
	var flooded, own atomic.Int64
	joinAs(t, abuseIP(140), victim.Addr(), true, func(m wire.Message) {
		if q, ok := m.(wire.Query); ok {
			if isAttack(q.ID) {
				flooded.Add(1)
			} else if q.Hops == 0 {
				own.Add(1)
			}
		}
	})
	var atks []*tcpPeer
	for i := range 3 {
		atks = append(atks, joinAs(t, abuseIP(141+i), victim.Addr(), true, nil))
	}
	waitFor(t, 30*time.Second, "no neighbours", func() bool { return victim.Neighbours() == 4 })
	length := 3 * time.Second
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lookups := 0
	lastLookup := start
	q := wire.Query{TTL: 7}
	for time.Since(start) < length {
		<-tick.C
		for _, a := range atks {
			var buf []byte
			for range 2 { // 100 a second from each
				crand.Read(q.ID[:])
				copy(q.ID[:], attackMark[:])
				buf, _ = wire.AppendFrame(buf, q)
			}
			if err := a.raw(buf); err != nil {
				t.Fatal(err)
			}
		}
		if time.Since(lastLookup) > 500*time.Millisecond {
			lastLookup = time.Now()
			lookups++
			ctx, cancel := context.WithCancel(context.Background())
			if _, err := victim.Lookup(ctx, v.ih); err != nil {
				t.Fatal(err)
			}
			cancel()
		}
	}
	waitFor(t, 30*time.Second, "the node's own lookups did not all reach the neighbour", func() bool { return own.Load() == int64(lookups) })
	elapsed := time.Since(start)
	rate := float64(flood.DefaultQueryRate) / 2
	most := int64(2*rate + rate*elapsed.Seconds() + 1)
	st := victim.FloodStats()
	t.Logf("three neighbours flooding for %v: %d of their queries forwarded to a fourth (at most %d), %d copies not forwarded, %d not relayed; %d own lookups all sent",
		length, flooded.Load(), most, st.ForwardDropped, st.RelayDropped, lookups)
	if flooded.Load() > most || st.ForwardDropped == 0 {
		t.Errorf("%d flooded queries forwarded to one neighbour; want at most %d", flooded.Load(), most)
	}
}
