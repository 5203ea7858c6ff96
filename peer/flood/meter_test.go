package flood_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// frameLen is the bytes of m's frame.
func frameLen(t *testing.T, m wire.Message) int64 {
	t.Helper()
	b, err := wire.AppendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

// TestMeterTrace: on a settled overlay whose links all have the same delay, a query's first
// copy reaches each node along a shortest path, so what a traced flood costs is known
// exactly from the graph: the origin sends one copy per neighbour, every node first reached
// at h < TTL hops forwards one to each neighbour but the sender, every holder reached sends
// a hit back over its h hops, and the first hit comes back after 2h delays. The Meter must
// count exactly that (and nothing of the background pings), WaitIdle must return only once
// it is all done, and walkers must take exactly walkers*TTL steps.
func TestMeterTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, degree = 80, 3
		m := flood.NewMeter()
		// The lookups run back to back, as in compare: the per-neighbour rate limits (and the
		// pass-on shares of them) are lifted, or a flood could use up a relay's budget and
		// cut a later walker short.
		s := newSim(t, n, 5, func(i int, c *flood.Config) { c.Degree = degree; c.Meter = m; c.QueryRate = 1e9 })
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if err := m.WaitReady(ctx, n); err != nil {
			t.Fatalf("%d of %d nodes have %d neighbours: %v", m.Ready(), n, degree, err)
		}
		// Dials already under way end within a handshake timeout; then the overlay is still.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := m.Count(); got != (flood.Count{}) {
			t.Errorf("building the overlay counted %+v; only lookups count", got)
		}

		// The graph, by node index.
		index := map[netip.AddrPort]int{}
		for i := range n {
			index[simAddr(i)] = i
		}
		adj := make([][]int, n)
		for i, nd := range s.nodes {
			addrs, err := nd.NeighbourAddrs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range addrs {
				j, ok := index[a]
				if !ok {
					t.Fatalf("node %d has a neighbour at %v, no node's address", i, a)
				}
				adj[i] = append(adj[i], j)
			}
		}
		for i := range adj {
			for _, j := range adj[i] {
				if !slices.Contains(adj[j], i) {
					t.Fatalf("node %d lists %d as a neighbour, not the other way round", i, j)
				}
			}
		}

		ih := metainfo.Hash{7}
		holders := []int{11, 42, 67}
		for _, i := range holders {
			if err := s.nodes[i].Announce(ctx, peer.Announcement{InfoHash: ih, Port: 6881}); err != nil {
				t.Fatal(err)
			}
		}
		qLen := frameLen(t, wire.Query{})
		hitLen := frameLen(t, wire.Hit{Peers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:6881")}})

		for _, origin := range []int{3, 25, 58} {
			// Hops from the origin, breadth first.
			dist := make([]int, n)
			for i := range dist {
				dist[i] = -1
			}
			dist[origin] = 0
			queue := []int{origin}
			for len(queue) > 0 {
				i := queue[0]
				queue = queue[1:]
				for _, j := range adj[i] {
					if dist[j] < 0 {
						dist[j] = dist[i] + 1
						queue = append(queue, j)
					}
				}
			}
			for ttl := 1; ttl <= 7; ttl++ {
				want := flood.Count{Queries: int64(len(adj[origin]))}
				for i, h := range dist {
					if h >= 1 && h <= ttl {
						want.Reached++
					}
					if h >= 1 && h < ttl {
						want.Queries += int64(len(adj[i]) - 1)
					}
				}
				first := -1
				for _, i := range holders {
					if h := dist[i]; h >= 1 && h <= ttl {
						want.Hits += int64(h)
						if first < 0 || h < first {
							first = h
						}
					}
				}
				want.Bytes = want.Queries*qLen + want.Hits*hitLen

				before := m.Count()
				tr, err := s.nodes[origin].Trace(ctx, ih, ttl, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.WaitIdle(ctx); err != nil {
					t.Fatalf("from %d, TTL %d: %d frames still in flight: %v", origin, ttl, m.InFlight(), err)
				}
				got := m.Count().Sub(before)
				res, err := tr.End(ctx)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait() // nothing may come after WaitIdle
				if later := m.Count().Sub(before); later != got {
					t.Errorf("from %d, TTL %d: counted %+v at WaitIdle, %+v after", origin, ttl, got, later)
				}
				if got != want {
					t.Errorf("from %d, TTL %d: counted %+v, want %+v", origin, ttl, got, want)
				}
				if res.Found() != (first > 0) || (first > 0 && (res.Hops != first || res.FirstHit != time.Duration(2*first)*simLatency)) {
					t.Errorf("from %d, TTL %d: %+v, want the first hit from %d hops after %v", origin, ttl, res, first, time.Duration(2*first)*simLatency)
				}
				if res.Hits != countWithin(dist, holders, ttl) {
					t.Errorf("from %d, TTL %d: %d hits, want %d", origin, ttl, res.Hits, countWithin(dist, holders, ttl))
				}
			}
		}

		// Walkers take exactly their steps, whatever they find.
		for _, w := range []int{1, 4, 16} {
			before := m.Count()
			tr, err := s.nodes[3].Trace(ctx, ih, 5, w)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.WaitIdle(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := tr.End(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := m.Count().Sub(before)
			if got.Queries != int64(5*w) || got.Reached > int64(5*w) || got.Reached < 1 {
				t.Errorf("%d walkers of 5 steps: %+v", w, got)
			}
			if int64(res.Hits) > got.Hits {
				t.Errorf("%d walkers: %d hits at the origin, %d hit frames", w, res.Hits, got.Hits)
			}
		}

		// Pings go on in the background; they are not a lookup's.
		before := m.Count()
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := m.Count(); got != before {
			t.Errorf("a quiet minute counted %+v", got.Sub(before))
		}
		if _, err := s.nodes[0].Trace(ctx, ih, 8, 0); err == nil {
			t.Error("TTL 8 was accepted")
		}
	})
}

// countWithin is how many of holders are 1..ttl hops away.
func countWithin(dist, holders []int, ttl int) int {
	k := 0
	for _, i := range holders {
		if h := dist[i]; h >= 1 && h <= ttl {
			k++
		}
	}
	return k
}

// TestWalkersNotRelayLimited: at the default rates, a lookup with far more walkers than a
// neighbour's relay burst still takes walkers x TTL steps (the relay limit charges a
// lookup once per node, not once per walker).
func TestWalkersNotRelayLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, degree, walkers, ttl = 40, 3, 64, 3
		m := flood.NewMeter()
		s := newSim(t, n, 11, func(i int, c *flood.Config) { c.Degree = degree; c.Meter = m })
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if err := m.WaitReady(ctx, n); err != nil {
			t.Fatal(err)
		}
		ih := metainfo.Hash{7}
		before := m.Count()
		tr, err := s.nodes[1].Trace(ctx, ih, ttl, walkers)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.End(ctx); err != nil {
			t.Fatal(err)
		}
		if got := m.Count().Sub(before); got.Queries != walkers*ttl {
			t.Errorf("%d walkers of %d steps took %d steps", walkers, ttl, got.Queries)
		}
	})
}
