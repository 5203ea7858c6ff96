package route_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer/flood/route"
)

// overlay is an in-memory overlay: every node's routing state, and nothing else.
type overlay struct {
	nbrs  []*route.Neighbours
	seen  []*route.Seen
	paths []*route.Paths
	index map[route.ID]int
}

// newOverlay joins size nodes at random, each dialing until it has degree neighbours and
// accepting only while it has fewer than degree, so that no node has more than degree: a
// random degree-regular-ish graph.
func newOverlay(t *testing.T, r *rand.Rand, size, degree int) *overlay {
	o := &overlay{index: make(map[route.ID]int)}
	for i := range size {
		o.nbrs = append(o.nbrs, route.NewNeighbours(degree))
		o.seen = append(o.seen, route.NewSeen(1024, time.Minute))
		o.paths = append(o.paths, route.NewPaths(1024, time.Minute))
		o.index[id(i)] = i
	}
	for _, i := range r.Perm(size) {
		for tries := 0; o.nbrs[i].Want() > 0 && tries < 100; tries++ {
			j := r.IntN(size)
			if j == i || o.nbrs[i].Has(id(j)) || o.nbrs[j].Len() >= degree {
				continue
			}
			if !o.nbrs[i].Add(id(j), addr(j)) || !o.nbrs[j].Add(id(i), addr(i)) {
				t.Fatalf("link %d-%d refused", i, j)
			}
		}
	}
	full := 0
	for i, n := range o.nbrs {
		if n.Len() > degree || n.Len() == 0 {
			t.Fatalf("node %d has %d neighbours", i, n.Len())
		}
		if n.Len() == degree {
			full++
		}
	}
	if full < size*95/100 {
		t.Fatalf("only %d of %d nodes at degree %d", full, size, degree)
	}
	return o
}

// distances is every node's hop count from origin (-1: unreachable).
func (o *overlay) distances(origin int) []int {
	d := make([]int, len(o.nbrs))
	for i := range d {
		d[i] = -1
	}
	d[origin] = 0
	q := []int{origin}
	for len(q) > 0 {
		i := q[0]
		q = q[1:]
		for _, n := range o.nbrs[i].IDs() {
			if j := o.index[n]; d[j] < 0 {
				d[j] = d[i] + 1
				q = append(q, j)
			}
		}
	}
	return d
}

type msg struct {
	to, from int
	ttl      uint8
	hops     uint8
}

// flood runs query q from origin with the given ttl, every link taking the same time (so
// messages are delivered in the order sent), as a node would: the origin sends to every
// neighbour; a receiver drops a duplicate, else records the reverse path and forwards.
// It returns the messages sent and each node reached with the hops it was reached at.
func (o *overlay) flood(q route.ID, origin int, ttl uint8, now time.Time) (messages int, reached map[int]uint8) {
	reached = make(map[int]uint8)
	o.seen[origin].Check(q, now)
	o.paths[origin].Put(q, route.ID{}, now)
	var queue []msg
	for _, n := range o.nbrs[origin].IDs() {
		queue = append(queue, msg{to: o.index[n], from: origin, ttl: ttl, hops: 1})
	}
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		messages++
		if o.seen[m.to].Check(q, now) {
			continue
		}
		reached[m.to] = m.hops
		o.paths[m.to].Put(q, id(m.from), now)
		targets, next := route.Forward(o.nbrs[m.to], id(m.from), m.ttl)
		for _, n := range targets {
			queue = append(queue, msg{to: o.index[n], from: m.to, ttl: next, hops: m.hops + 1})
		}
	}
	return messages, reached
}

// bound is the most messages a flood with TTL t sends at degree d: d + d(d-1) + ... +
// d(d-1)^(t-1).
func bound(d, t int) int {
	pow := 1
	for range t {
		pow *= d - 1
	}
	return d * (pow - 1) / (d - 2)
}

func TestFloodBound(t *testing.T) {
	const size, degree = 1000, 4
	r := rand.New(rand.NewPCG(2026, 4))
	o := newOverlay(t, r, size, degree)
	holds := make(map[int]bool) // content on 1% of the nodes
	for _, i := range r.Perm(size)[:size/100] {
		holds[i] = true
	}
	now := t0
	for ttl := 1; ttl <= route.MaxTTL; ttl++ {
		found, maxMsgs, sumReached := 0, 0, 0
		const queries = 50
		for qi := range queries {
			now = now.Add(time.Second)
			origin := r.IntN(size)
			q := route.ID{0: 0xf1, 1: byte(ttl), 2: byte(qi)}
			msgs, reached := o.flood(q, origin, uint8(ttl), now)
			maxMsgs, sumReached = max(maxMsgs, msgs), sumReached+len(reached)

			if msgs > bound(degree, ttl) {
				t.Fatalf("ttl %d: %d messages, bound %d", ttl, msgs, bound(degree, ttl))
			}
			if msgs < len(reached) {
				t.Fatalf("ttl %d: %d messages reached %d nodes", ttl, msgs, len(reached))
			}
			// Equal link delays: exactly the nodes within ttl hops, each at its distance.
			dist := o.distances(origin)
			within := 0
			for i, d := range dist {
				if d >= 1 && d <= ttl {
					within++
					if h, ok := reached[i]; !ok || int(h) != d {
						t.Fatalf("ttl %d: node %d at distance %d reached at hops %d (%v)", ttl, i, d, h, ok)
					}
				}
			}
			if within != len(reached) {
				t.Fatalf("ttl %d: reached %d nodes, %d within reach", ttl, len(reached), within)
			}
			if ttl == 1 {
				if len(reached) != o.nbrs[origin].Len() || msgs != o.nbrs[origin].Len() {
					t.Fatalf("ttl 1: reached %d with %d messages; origin has %d neighbours", len(reached), msgs, o.nbrs[origin].Len())
				}
				for _, n := range o.nbrs[origin].IDs() {
					if _, ok := reached[o.index[n]]; !ok {
						t.Fatalf("ttl 1: neighbour %x not reached", n)
					}
				}
			}
			// Every holder reached answers; its hit walks the reverse path back to the origin
			// in as many hops as the query took.
			hit := false
			for i, hops := range reached {
				if !holds[i] {
					continue
				}
				at := i
				for step := 0; ; step++ {
					from, ok := o.paths[at].Get(q, now)
					if !ok {
						t.Fatalf("ttl %d: no reverse path at node %d", ttl, at)
					}
					if from == (route.ID{}) {
						if at != origin || step != int(hops) {
							t.Fatalf("ttl %d: hit ended at %d after %d steps; origin %d, hops %d", ttl, at, step, origin, hops)
						}
						break
					}
					if !o.nbrs[at].Has(from) {
						t.Fatalf("ttl %d: reverse path through a non-neighbour", ttl)
					}
					at = o.index[from]
				}
				hit = true
			}
			if hit {
				found++
			}
		}
		t.Logf("ttl %d: at most %d messages (bound %d), %d nodes reached on average; %d of %d queries found the content",
			ttl, maxMsgs, bound(degree, ttl), sumReached/queries, found, queries)
		if ttl == route.MaxTTL && found < queries*9/10 {
			t.Errorf("ttl %d found the content on %d of %d queries", ttl, found, queries)
		}
	}
}

// A query seen again later, from another neighbour, is a duplicate; once the seen table
// has forgotten it, it floods again.
func TestFloodDuplicate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	o := newOverlay(t, r, 200, 4)
	q := route.ID{0: 0xd0}
	_, first := o.flood(q, 0, 3, t0)
	if msgs, again := o.flood(q, 0, 3, t0.Add(time.Second)); len(again) != 0 || msgs != o.nbrs[0].Len() {
		t.Fatalf("repeat within the seen ttl: reached %d with %d messages", len(again), msgs)
	}
	if _, later := o.flood(q, 0, 3, t0.Add(time.Hour)); len(later) != len(first) {
		t.Fatalf("after expiry: reached %d, first time %d", len(later), len(first))
	}
}
