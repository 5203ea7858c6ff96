package dht_test

import (
	"context"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/dht"
	"github.com/shoalp2p/shoal/swarm/simnet"
)

// simNode starts a DHT node at ap on the in-memory network, closed when the test ends.
func simNode(t *testing.T, sn *simnet.Network, ap string, id [20]byte, boot []string, m *dht.Meter) *dht.Node {
	t.Helper()
	c, err := sn.Listen(netip.MustParseAddrPort(ap))
	if err != nil {
		t.Fatal(err)
	}
	n, err := dht.New(dht.Config{Conn: c, ID: id, Bootstrap: boot, Manual: true, Meter: m, QueryTimeout: 2 * time.Second, Logger: testLogger(t)})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	})
	return n
}

// simSwarm is n nodes on an in-memory network, all sharing one Meter, joined through node 0
// and then bootstrapped once more, all at once, so that their tables hold their neighbours.
type simSwarm struct {
	net   *simnet.Network
	meter *dht.Meter
	nodes []*dht.Node
	ids   [][20]byte
}

func newSimSwarm(t *testing.T, n int, seed uint64) *simSwarm {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	sn := simnet.New(simnet.Config{Seed: seed})
	t.Cleanup(func() { sn.Close() }) // after the nodes: cleanups run last-in first-out
	s := &simSwarm{net: sn, meter: dht.NewMeter()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	boot := []string{} // node 0 joins nobody (nil would mean the public routers)
	for i := range n {
		var id [20]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		nd := simNode(t, sn, fmt.Sprintf("127.0.1.%d:6881", i+1), id, boot, s.meter)
		if i == 0 {
			boot = []string{nd.Addr().String()}
		}
		s.nodes, s.ids = append(s.nodes, nd), append(s.ids, id)
	}
	for range 2 {
		var wg sync.WaitGroup
		for i, nd := range s.nodes[1:] {
			wg.Go(func() {
				if err := nd.Bootstrap(ctx); err != nil {
					t.Errorf("node %d: bootstrap: %v", i+1, err)
				}
			})
		}
		wg.Wait()
	}
	if t.Failed() {
		t.FailNow()
	}
	return s
}

// settle waits until every get_peers query has had its reply.
func (s *simSwarm) settle(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if lost, err := s.meter.Settle(ctx); err != nil {
		t.Fatalf("%d get_peers queries never answered: %v", lost, err)
	}
}

// distance is the XOR distance of a and b, as a comparable byte string.
func distance(a, b [20]byte) string {
	var d [20]byte
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return string(d[:])
}

// TestTraceSim: 64 nodes on an in-memory network. One announces; a traced lookup from every
// other node finds it, and the shared Meter's count of the network's get_peers messages
// agrees with what each trace says it sent and received. A newcomer that knows only the
// node farthest from the info-hash (which stores nothing) finds the peer at hop 2 or more.
func TestTraceSim(t *testing.T) {
	const n, port = 64, 7000
	s := newSimSwarm(t, n, 1)
	ih := metainfo.Hash{0x5a, 0x11}
	announce(t, s.nodes[3], ih, port)
	s.settle(t)
	want := netip.AddrPortFrom(s.nodes[3].Addr().Addr(), port)

	ctx := context.Background()
	var queries, hops []int
	for i, nd := range s.nodes {
		if i == 3 {
			continue
		}
		before, netBefore := s.meter.Traffic(), s.net.Stats()
		tr, err := nd.Trace(ctx, ih)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		s.settle(t)
		got := s.meter.Traffic().Sub(before)
		if !slices.Contains(tr.Peers, want) {
			t.Errorf("node %d: found %v, want %v", i, tr.Peers, want)
		}
		if tr.Hops < 1 || tr.FirstPeer <= 0 || tr.FirstPeer > tr.Took {
			t.Errorf("node %d: hops %d, first peer after %v of %v", i, tr.Hops, tr.FirstPeer, tr.Took)
		}
		// No datagram is lost in memory: every query is answered and every reply arrives.
		if tr.Replies != tr.Queries || got.Queries != int64(tr.Queries) || got.Replies != got.Queries || got.Received != got.Replies {
			t.Errorf("node %d: trace %d queries, %d replies; network %+v", i, tr.Queries, tr.Replies, got)
		}
		if got.RecvBytes != got.ReplyBytes || tr.Bytes != got.Bytes() || tr.Bytes == 0 {
			t.Errorf("node %d: trace %d bytes; network %+v", i, tr.Bytes, got)
		}
		if sent := s.net.Stats().Sent - netBefore.Sent; sent < got.Messages() {
			t.Errorf("node %d: %d datagrams on the network, fewer than the %d get_peers messages counted", i, sent, got.Messages())
		}
		queries, hops = append(queries, tr.Queries), append(hops, tr.Hops)
	}
	slices.Sort(queries)
	slices.Sort(hops)
	t.Logf("%d traces: queries min/median/max %d/%d/%d, hops %d/%d/%d", len(queries),
		queries[0], queries[len(queries)/2], queries[len(queries)-1], hops[0], hops[len(hops)/2], hops[len(hops)-1])
	if queries[len(queries)/2] > 30 {
		t.Errorf("median lookup queried %d of %d nodes", queries[len(queries)/2], n)
	}

	// The newcomer: its only starting node is the farthest from ih, not one of the 8 closest
	// that hold the announce.
	far := 0
	for i, id := range s.ids {
		if distance(id, ih) > distance(s.ids[far], ih) {
			far = i
		}
	}
	lead := bits.LeadingZeros8(s.ids[far][0] ^ ih[0])
	newcomer := simNode(t, s.net, "127.0.2.1:6881", [20]byte{0xff}, []string{s.nodes[far].Addr().String()}, s.meter)
	tr, err := newcomer.Trace(ctx, ih)
	if err != nil {
		t.Fatal(err)
	}
	s.settle(t)
	t.Logf("newcomer through node %d (id differs from the hash in bit %d): %d queries, peers %v at hop %d", far, lead, tr.Queries, tr.Peers, tr.Hops)
	if !slices.Contains(tr.Peers, want) || tr.Hops < 2 || tr.Hops > 4 {
		t.Errorf("newcomer: found %v at hop %d, want %v at hop 2..4", tr.Peers, tr.Hops, want)
	}
}

// TestTraceLatency: with 5 ms each way, the first peer cannot come sooner than one round
// trip per hop.
func TestTraceLatency(t *testing.T) {
	const latency = 5 * time.Millisecond
	s := newSimSwarm(t, 40, 2)
	ih := metainfo.Hash{0x77}
	announce(t, s.nodes[0], ih, 7000)
	s.settle(t)
	s.net.SetLatency(latency, latency)
	for _, nd := range s.nodes[1:6] {
		tr, err := nd.Trace(context.Background(), ih)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Peers) == 0 {
			t.Fatalf("nothing found: %+v", tr)
		}
		if low := time.Duration(2*tr.Hops) * latency; tr.FirstPeer < low {
			t.Errorf("first peer at hop %d after %v, sooner than %v", tr.Hops, tr.FirstPeer, low)
		}
		t.Logf("hop %d after %v (took %v, %d queries)", tr.Hops, tr.FirstPeer.Round(time.Microsecond), tr.Took.Round(time.Microsecond), tr.Queries)
	}
	s.settle(t)
}

// TestConnConfig: a node on a given socket takes no listen address, and closes the socket.
func TestConnConfig(t *testing.T) {
	sn := simnet.New(simnet.Config{})
	defer sn.Close()
	c, err := sn.Listen(netip.MustParseAddrPort("127.0.3.1:6881"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := dht.New(dht.Config{Conn: c, Listen: "127.0.0.1:0"}); err == nil {
		n.Close()
		t.Fatal("both a socket and a listen address accepted")
	}
	if n, err := dht.New(dht.Config{Conn: c, QueryTimeout: -time.Second}); err == nil {
		n.Close()
		t.Fatal("a negative query timeout accepted")
	}
	n, err := dht.New(dht.Config{Conn: c, Bootstrap: []string{}, Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Addr().String(); got != "127.0.3.1:6881" {
		t.Errorf("Addr %s", got)
	}
	if err := n.Announce(context.Background(), peer.Announcement{InfoHash: metainfo.Hash{1}, Port: 1}); err == nil {
		t.Error("an announce with nobody to tell succeeded")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Listen(netip.MustParseAddrPort("127.0.3.1:6881")); err != nil {
		t.Errorf("the node's address is still taken after Close: %v", err)
	}
}
