package flood_test

import (
	"context"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
)

// simAddr is node i's overlay address on the in-memory network: 127.0.x.y.
func simAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(i >> 16), byte(i >> 8), byte(i) + 1}), 7000)
}

// simLatency is each simulated link's one-way delay: messages arrive in hop order, as on a
// real network, so a flood's first copy of a query comes by a shortest path.
const simLatency = 10 * time.Millisecond

// sim is an in-memory overlay, run inside a synctest bubble.
type sim struct {
	t     *testing.T
	net   *transport.Network
	nodes []*flood.Node
	alive []bool
}

// newSim starts n nodes, one every joinEvery of fake time; each joins through node 0, as
// nodes would through one well-known bootstrap node (which, once full, answers with
// addresses of the nodes it knows: the links are spread at random). cfg adjusts each node's
// configuration.
func newSim(t *testing.T, n int, seed uint64, cfg func(i int, c *flood.Config)) *sim {
	const joinEvery = 10 * time.Millisecond
	s := &sim{t: t, net: transport.NewNetwork(), nodes: make([]*flood.Node, n), alive: make([]bool, n)}
	s.net.SetDelay(simLatency, 0)
	for i := range n {
		tr, err := s.net.Listen(simAddr(i))
		if err != nil {
			t.Fatal(err)
		}
		c := flood.Config{Transport: tr, Seed: seed*1_000_003 + uint64(i) + 1, TTL: 7}
		if i > 0 {
			c.Bootstrap = []netip.AddrPort{simAddr(0)}
			time.Sleep(joinEvery)
		}
		if cfg != nil {
			cfg(i, &c)
		}
		nd, err := flood.New(c)
		if err != nil {
			t.Fatal(err)
		}
		s.nodes[i], s.alive[i] = nd, true
	}
	t.Cleanup(func() {
		for i, nd := range s.nodes {
			if s.alive[i] {
				nd.Close()
			}
		}
	})
	return s
}

// settle lets d of fake time pass and waits for the overlay to go quiet.
func (s *sim) settle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// degrees checks that every live node has between d and 2d neighbours; it returns the
// largest degree and the number of links.
func (s *sim) degrees(d int) (maxDeg, links int) {
	s.t.Helper()
	bad := 0
	for i, nd := range s.nodes {
		if !s.alive[i] {
			continue
		}
		k := nd.Neighbours()
		links += k
		maxDeg = max(maxDeg, k)
		if k < d || k > 2*d {
			bad++
			if bad <= 5 {
				s.t.Errorf("node %d has %d neighbours, want %d..%d", i, k, d, 2*d)
			}
		}
	}
	if bad > 5 {
		s.t.Errorf("%d nodes out of the degree bounds", bad)
	}
	return maxDeg, links / 2
}

// totals sums query messages sent and distinct queries seen over the live nodes.
func (s *sim) totals() (queries, seen int64) {
	for i, nd := range s.nodes {
		if s.alive[i] {
			st := nd.FloodStats()
			queries += st.Sent["query"]
			seen += st.QueriesSeen
		}
	}
	return queries, seen
}

// search is one lookup's measured cost.
type search struct {
	found    bool
	messages int64 // queries sent by every node
	reached  int64 // nodes the query reached, the origin not counted
	firstHit time.Duration
}

// lookup runs one lookup from node i to its end (LookupTimeout of fake time; the overlay
// is quiet long before), then lets a second pass so that rate limits refill.
func (s *sim) lookup(i int, ih metainfo.Hash) search {
	s.t.Helper()
	q0, r0 := s.totals()
	start := time.Now()
	ch, err := s.nodes[i].Lookup(context.Background(), ih)
	if err != nil {
		s.t.Fatalf("node %d: lookup: %v", i, err)
	}
	var res search
	for range ch {
		if !res.found {
			res.found, res.firstHit = true, time.Since(start)
		}
	}
	synctest.Wait()
	q1, r1 := s.totals()
	res.messages, res.reached = q1-q0, r1-r0
	time.Sleep(time.Second)
	return res
}

// floodBound is d((d-1)^t - 1)/(d-2): the most query messages a flood with TTL t sends when
// every node has degree d (each node forwards to d-1 others).
func floodBound(d, t int) float64 {
	return float64(d) * (math.Pow(float64(d-1), float64(t)) - 1) / float64(d-2)
}

// TestSimFlood: 1,000 nodes, degree 4, one torrent on 1% of them. Flooding with TTL 7 finds
// it on nearly every query and costs no more than the bound; TTL 1 reaches exactly the
// neighbours; random walks find it with far fewer messages.
func TestSimFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 nodes")
	}
	const (
		degree  = 4
		queries = 100
		walkers = 64
	)
	n := 1000
	if raceOn {
		n = 400 // 1,000 nodes take some 4 minutes under the race detector
	}
	// Node 0 is the bootstrap node; nodes 1..20 search with TTL 1, 21..40 with random
	// walkers, 41..60 with TTL 3, 61..80 with TTL 5, the others with TTL 7.
	synctest.Test(t, func(t *testing.T) {
		s := newSim(t, n, 42, func(i int, c *flood.Config) {
			c.Degree = degree
			switch {
			case i >= 1 && i <= 20:
				c.TTL = 1
			case i >= 21 && i <= 40:
				c.Walkers = walkers
			case i >= 41 && i <= 60:
				c.TTL = 3
			case i >= 61 && i <= 80:
				c.TTL = 5
			}
		})
		s.settle(30 * time.Second)
		maxDeg, links := s.degrees(degree)
		t.Logf("overlay: %d nodes, %d links (mean degree %.2f), max degree %d", n, links, 2*float64(links)/float64(n), maxDeg)

		r := rand.New(rand.NewPCG(7, 7))
		ih := metainfo.Hash{1, 2, 3}
		holders := map[int]bool{}
		for len(holders) < n/100 {
			i := 81 + r.IntN(n-81)
			if holders[i] {
				continue
			}
			holders[i] = true
			if err := s.nodes[i].Announce(context.Background(), peer.Announcement{InfoHash: ih, Port: 6881}); err != nil {
				t.Fatal(err)
			}
		}
		origin := func(lo, hi int) int {
			for {
				if i := lo + r.IntN(hi-lo); !holders[i] {
					return i
				}
			}
		}

		// Flooding, TTL 7.
		bound := floodBound(degree, 7)
		boundMax := floodBound(maxDeg, 7)
		var found, msgs, reached, maxMsgs int64
		var firstHit time.Duration
		for range queries {
			res := s.lookup(origin(81, n), ih)
			if res.found {
				found++
				firstHit += res.firstHit
			}
			msgs += res.messages
			reached += res.reached
			maxMsgs = max(maxMsgs, res.messages)
			if res.messages < res.reached {
				t.Errorf("a flood sent %d messages but reached %d nodes", res.messages, res.reached)
			}
			if float64(res.messages) > boundMax || res.messages > 2*int64(links) {
				t.Errorf("a flood sent %d messages: over the bound %.0f (max degree %d) or twice the %d links", res.messages, boundMax, maxDeg, links)
			}
		}
		t.Logf("flood TTL 7: found on %d/%d queries; %.0f messages per query (max %d; bound d((d-1)^t-1)/(d-2) = %.0f for d=4, %.0f for d=%d); %.0f nodes reached per query; first hit after %v on average (%v per hop)",
			found, queries, float64(msgs)/queries, maxMsgs, bound, boundMax, maxDeg, float64(reached)/queries,
			firstHit/time.Duration(max(found, 1)), simLatency)
		if found < queries*95/100 {
			t.Errorf("flooding found the torrent on %d of %d queries, want >= 95%%", found, queries)
		}
		floodMsgs := float64(msgs) / queries

		// TTL 3 and 5: fewer nodes reached, fewer messages, within the bound at the overlay's
		// largest degree.
		for _, g := range []struct{ ttl, lo int }{{3, 41}, {5, 61}} {
			var found, msgs, reached int64
			for range 30 {
				res := s.lookup(origin(g.lo, g.lo+20), ih)
				if res.found {
					found++
				}
				msgs += res.messages
				reached += res.reached
				if res.messages < res.reached || float64(res.messages) > floodBound(maxDeg, g.ttl) {
					t.Errorf("TTL %d: %d messages, %d nodes reached; bound %.0f at degree %d", g.ttl, res.messages, res.reached, floodBound(maxDeg, g.ttl), maxDeg)
				}
			}
			t.Logf("flood TTL %d: found on %d/30 queries; %.0f messages per query (bound %.0f for d=4, %.0f for d=%d); %.0f nodes reached per query",
				g.ttl, found, float64(msgs)/30, floodBound(degree, g.ttl), floodBound(maxDeg, g.ttl), maxDeg, float64(reached)/30)
		}

		// TTL 1 reaches exactly the neighbours.
		for range 20 {
			i := origin(1, 21)
			res := s.lookup(i, ih)
			if k := int64(s.nodes[i].Neighbours()); res.reached != k || res.messages != k {
				t.Errorf("TTL 1 from node %d: %d messages, %d nodes reached; it has %d neighbours", i, res.messages, res.reached, k)
			}
		}

		// Random walks: 32 walkers, 7 steps each.
		found, msgs, reached, firstHit = 0, 0, 0, 0
		for range queries {
			res := s.lookup(origin(21, 41), ih)
			if res.found {
				found++
				firstHit += res.firstHit
			}
			msgs += res.messages
			reached += res.reached
		}
		walkMsgs := float64(msgs) / queries
		t.Logf("%d random walkers, 7 steps: found on %d/%d queries; %.0f messages per query; %.0f nodes reached per query; first hit after %v on average",
			walkers, found, queries, walkMsgs, float64(reached)/queries, firstHit/time.Duration(max(found, 1)))
		if walkMsgs > float64(walkers*7) || walkMsgs >= floodMsgs/4 {
			t.Errorf("random walks cost %.0f messages per query (flooding %.0f)", walkMsgs, floodMsgs)
		}
		if found < queries*60/100 {
			t.Errorf("random walks found the torrent on %d of %d queries", found, queries)
		}

		for _, nd := range s.nodes {
			if st := nd.FloodStats(); st.RateDropped != 0 || st.Garbled != 0 || st.Overflow != 0 {
				t.Errorf("unexpected drops: %+v", st)
				break
			}
		}
	})
}

// TestSimChurn: 300 nodes; a third leave at once. The rest re-form to the degree bounds
// and flooding still finds a torrent held by 1% of them.
func TestSimChurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, degree = 300, 4
		s := newSim(t, n, 9, func(i int, c *flood.Config) { c.Degree = degree })
		s.settle(30 * time.Second)
		s.degrees(degree)

		r := rand.New(rand.NewPCG(3, 3))
		for _, i := range r.Perm(n)[:n/3] {
			s.nodes[i].Close()
			s.alive[i] = false
		}
		s.settle(30 * time.Second)
		maxDeg, links := s.degrees(degree)
		t.Logf("after %d of %d nodes left: %d links, max degree %d", n/3, n, links, maxDeg)

		ih := metainfo.Hash{9}
		var live []int
		for i := range n {
			if s.alive[i] {
				live = append(live, i)
			}
		}
		holders := map[int]bool{}
		for _, i := range live[:3] {
			holders[i] = true
			if err := s.nodes[i].Announce(context.Background(), peer.Announcement{InfoHash: ih, Port: 6881}); err != nil {
				t.Fatal(err)
			}
		}
		found := 0
		for q := range 30 {
			i := live[3+q*5%(len(live)-3)]
			if s.lookup(i, ih).found {
				found++
			}
		}
		if found < 29 {
			t.Errorf("after churn, flooding found the torrent on %d of 30 queries", found)
		}
	})
}

// TestIslandRejoins: two nodes that know only each other, short of neighbours, go back to
// their bootstrap address (here one that nobody listened on when they started) until it
// answers, and the three of them reach their degree.
func TestIslandRejoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const degree = 2
		nw := transport.NewNetwork()
		nw.SetDelay(simLatency, 0)
		m := flood.NewMeter()
		start := func(i int, boot ...netip.AddrPort) {
			tr, err := nw.Listen(simAddr(i))
			if err != nil {
				t.Fatal(err)
			}
			nd, err := flood.New(flood.Config{Transport: tr, Bootstrap: boot, Degree: degree, Seed: uint64(i + 1), Meter: m, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { nd.Close() })
		}
		start(1, simAddr(2), simAddr(0)) // node 0 is not there yet
		start(2, simAddr(1))
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := m.Ready(); got != 0 {
			t.Fatalf("%d of 2 nodes have %d neighbours with only each other to link to", got, degree)
		}
		start(0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.WaitReady(ctx, 3); err != nil {
			t.Errorf("%d of 3 nodes reached %d neighbours once the bootstrap node came: %v", m.Ready(), degree, err)
		}
	})
}
