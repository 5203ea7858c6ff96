package route_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer/flood/route"
)

// t0 is an arbitrary start time; the package never reads a clock.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// id is a distinct nonzero ID for each i.
func id(i int) route.ID {
	var x route.ID
	x[0] = 1
	x[12], x[13], x[14], x[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
	return x
}

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(4000+i))
}

func TestClampTTL(t *testing.T) {
	for in, want := range map[int]uint8{-5: 1, 0: 1, 1: 1, 5: 5, 7: 7, 8: 7, 1000: 7} {
		if got := route.ClampTTL(in); got != want {
			t.Errorf("ClampTTL(%d) = %d, want %d", in, got, want)
		}
	}
	for in, want := range map[uint8]uint8{0: 1, 3: 3, 255: 7} {
		if got := route.ClampTTL(in); got != want {
			t.Errorf("ClampTTL(uint8 %d) = %d, want %d", in, got, want)
		}
	}
}

func TestForward(t *testing.T) {
	n := route.NewNeighbours(2)
	for i := 1; i <= 4; i++ {
		n.Add(id(i), addr(i))
	}
	for _, tc := range []struct {
		from    route.ID
		ttl     uint8
		targets []route.ID
		next    uint8
	}{
		{id(2), 5, []route.ID{id(1), id(3), id(4)}, 4},
		{id(9), 2, []route.ID{id(1), id(2), id(3), id(4)}, 1}, // from is not a neighbour (any more)
		{id(1), 1, nil, 0}, // arrived with ttl 1: a leaf, it goes no further
		{id(1), 0, nil, 0},
		{id(1), 255, []route.ID{id(2), id(3), id(4)}, route.MaxTTL - 1}, // capped
	} {
		targets, next := route.Forward(n, tc.from, tc.ttl)
		if !slices.Equal(targets, tc.targets) || next != tc.next {
			t.Errorf("from %x ttl %d: %x %d, want %x %d", tc.from[15], tc.ttl, targets, next, tc.targets, tc.next)
		}
	}
	// ttl 2 -> forwarded with 1 -> not forwarded further.
	targets, next := route.Forward(n, id(1), 2)
	if len(targets) != 3 || next != 1 {
		t.Fatalf("ttl 2: %d targets, ttl %d", len(targets), next)
	}
	if targets, next := route.Forward(n, id(1), next); targets != nil || next != 0 {
		t.Fatalf("ttl 1: %x, %d", targets, next)
	}
	if targets, _ := route.Forward(route.NewNeighbours(3), id(1), 7); targets != nil {
		t.Fatalf("no neighbours: %x", targets)
	}
}

func TestNeighbours(t *testing.T) {
	n := route.NewNeighbours(3)
	if n.Degree() != 3 || n.Len() != 0 || n.Want() != 3 || n.Full() {
		t.Fatalf("empty: degree %d len %d want %d full %v", n.Degree(), n.Len(), n.Want(), n.Full())
	}
	if n.Add(route.ID{}, addr(0)) {
		t.Fatal("added the zero ID")
	}
	for i := 6; i >= 1; i-- { // out of order: IDs stays sorted
		if !n.Add(id(i), addr(i)) {
			t.Fatalf("add %d refused", i)
		}
		if want := max(0, 3-n.Len()); n.Want() != want {
			t.Fatalf("len %d: want %d, not %d", n.Len(), want, n.Want())
		}
		if n.Full() != (n.Len() == 6) {
			t.Fatalf("len %d: full %v", n.Len(), n.Full())
		}
	}
	if n.Add(id(7), addr(7)) {
		t.Fatal("added past 2*degree")
	}
	if n.Add(id(3), addr(99)) {
		t.Fatal("added twice")
	}
	if a, ok := n.Addr(id(3)); !ok || a != addr(3) {
		t.Fatalf("Addr(3) = %v, %v", a, ok)
	}
	if _, ok := n.Addr(id(7)); ok || n.Has(id(7)) {
		t.Fatal("7 is there")
	}
	if !slices.Equal(n.IDs(), []route.ID{id(1), id(2), id(3), id(4), id(5), id(6)}) {
		t.Fatalf("IDs %x", n.IDs())
	}
	ids := n.IDs()
	ids[0] = id(99) // a copy
	if !n.Has(id(1)) || n.Has(id(99)) {
		t.Fatal("IDs aliases the set")
	}
	if !n.Remove(id(3)) || n.Remove(id(3)) || n.Has(id(3)) || n.Len() != 5 || n.Full() {
		t.Fatal("remove")
	}
	if !n.Add(id(7), addr(7)) {
		t.Fatal("room again, refused")
	}
	for _, i := range []int{1, 2, 4, 5, 6} {
		n.Remove(id(i))
	}
	if n.Len() != 1 || n.Want() != 2 || !slices.Equal(n.IDs(), []route.ID{id(7)}) {
		t.Fatalf("len %d want %d ids %x", n.Len(), n.Want(), n.IDs())
	}
	if d := route.NewNeighbours(0).Degree(); d != 1 {
		t.Fatalf("degree 0 -> %d", d)
	}
}

func TestRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := route.NewNeighbours(4)
	if _, ok := n.Random(r, route.ID{}); ok {
		t.Fatal("picked from an empty set")
	}
	n.Add(id(1), addr(1))
	if _, ok := n.Random(r, id(1)); ok {
		t.Fatal("picked except, the only neighbour")
	}
	if got, ok := n.Random(r, id(2)); !ok || got != id(1) {
		t.Fatalf("got %x %v", got, ok)
	}
	for i := 2; i <= 8; i++ {
		n.Add(id(i), addr(i))
	}
	counts := map[route.ID]int{}
	const draws = 70000
	for i := range draws {
		except := id(1 + i%8)
		got, ok := n.Random(r, except)
		if !ok || got == except || !n.Has(got) {
			t.Fatalf("Random(except %x) = %x, %v", except[15], got, ok)
		}
		counts[got]++
	}
	// Uniform over the 7 others: each ID is drawn 7/8 * 1/7 = 1/8 of the time.
	for id, c := range counts {
		if c < draws/8*9/10 || c > draws/8*11/10 {
			t.Errorf("%x drawn %d times of %d", id[15], c, draws)
		}
	}
	// Deterministic for a seed.
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for range 100 {
		x, _ := n.Random(a, id(3))
		y, _ := n.Random(b, id(3))
		if x != y {
			t.Fatal("not deterministic")
		}
	}
}

func TestSeen(t *testing.T) {
	s := route.NewSeen(100, time.Minute)
	if s.Check(id(1), t0) {
		t.Fatal("first sighting is a dup")
	}
	if !s.Check(id(1), t0.Add(59*time.Second)) {
		t.Fatal("second sighting within ttl not a dup")
	}
	// A dup does not renew: ttl runs from the first sighting.
	if s.Check(id(1), t0.Add(time.Minute)) {
		t.Fatal("dup after expiry")
	}
	if !s.Check(id(1), t0.Add(time.Minute+time.Second)) {
		t.Fatal("re-recorded id not a dup")
	}
	if s.Check(id(2), t0.Add(2*time.Minute)) || s.Len() != 1 {
		t.Fatalf("expired entries not swept: len %d", s.Len())
	}
}

func TestSeenCapacity(t *testing.T) {
	s := route.NewSeen(3, time.Hour)
	for i := 1; i <= 3; i++ {
		s.Check(id(i), t0.Add(time.Duration(i)*time.Second))
	}
	s.Check(id(4), t0.Add(4*time.Second)) // evicts 1, the oldest
	if s.Len() != 3 {
		t.Fatalf("len %d", s.Len())
	}
	for _, i := range []int{2, 3, 4} {
		if !s.Check(id(i), t0.Add(5*time.Second)) {
			t.Fatalf("%d evicted", i)
		}
	}
	if s.Check(id(1), t0.Add(5*time.Second)) { // evicted, so new (and now it evicts 2)
		t.Fatal("1 not evicted")
	}
	if s.Check(id(2), t0.Add(5*time.Second)) {
		t.Fatal("2 not evicted")
	}
	// Many IDs through a small table: bounded, and the newest always remembered.
	s = route.NewSeen(50, time.Hour)
	for i := range 10000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		if s.Check(id(i), now) || !s.Check(id(i), now) || s.Len() > 50 {
			t.Fatalf("i %d len %d", i, s.Len())
		}
	}
}

func TestSeenNoExpiry(t *testing.T) {
	s := route.NewSeen(2, 0)
	s.Check(id(1), t0)
	if !s.Check(id(1), t0.Add(1000*time.Hour)) {
		t.Fatal("ttl 0 expired")
	}
}

func TestPaths(t *testing.T) {
	p := route.NewPaths(100, 30*time.Second)
	if _, ok := p.Get(id(1), t0); ok {
		t.Fatal("empty table has a path")
	}
	p.Put(id(1), id(11), t0)
	p.Put(id(2), route.ID{}, t0) // our own query
	if from, ok := p.Get(id(1), t0.Add(29*time.Second)); !ok || from != id(11) {
		t.Fatalf("get 1: %x %v", from, ok)
	}
	if from, ok := p.Get(id(2), t0); !ok || from != (route.ID{}) {
		t.Fatalf("get 2: %x %v", from, ok)
	}
	if _, ok := p.Get(id(1), t0.Add(30*time.Second)); ok {
		t.Fatal("path outlived its ttl")
	}
	// Put again: replaced, ttl restarted.
	p.Put(id(3), id(13), t0.Add(40*time.Second))
	p.Put(id(3), id(14), t0.Add(60*time.Second))
	if from, ok := p.Get(id(3), t0.Add(80*time.Second)); !ok || from != id(14) {
		t.Fatalf("get 3: %x %v", from, ok)
	}
	if p.Len() != 1 {
		t.Fatalf("len %d", p.Len())
	}
}

func TestPathsCapacity(t *testing.T) {
	p := route.NewPaths(4, time.Hour)
	for i := 1; i <= 6; i++ {
		p.Put(id(i), id(100+i), t0)
	}
	if p.Len() != 4 {
		t.Fatalf("len %d", p.Len())
	}
	for i := 1; i <= 6; i++ {
		from, ok := p.Get(id(i), t0)
		if ok != (i > 2) || (ok && from != id(100+i)) {
			t.Fatalf("get %d: %x %v", i, from, ok)
		}
	}
	// The same query put over and over neither grows the table nor evicts the others.
	for i := range 10000 {
		p.Put(id(6), id(i), t0.Add(time.Duration(i)))
	}
	for i := 3; i <= 6; i++ {
		if _, ok := p.Get(id(i), t0.Add(time.Second)); !ok {
			t.Fatalf("%d evicted by puts of 6", i)
		}
	}
	// A put again is the newest: 3 is now the oldest and goes first.
	p.Put(id(4), id(4), t0.Add(2*time.Second))
	p.Put(id(7), id(7), t0.Add(2*time.Second))
	if _, ok := p.Get(id(3), t0.Add(2*time.Second)); ok {
		t.Fatal("3 not evicted")
	}
	if _, ok := p.Get(id(5), t0.Add(2*time.Second)); !ok {
		t.Fatal("5 evicted")
	}
}

func TestBook(t *testing.T) {
	b := route.NewBook(4)
	for _, a := range []netip.AddrPort{{}, netip.MustParseAddrPort("0.0.0.0:1"), netip.MustParseAddrPort("[::]:1"), netip.MustParseAddrPort("10.0.0.1:0")} {
		b.Add(a)
	}
	if b.Len() != 0 {
		t.Fatalf("undialable addresses kept: %d", b.Len())
	}
	r := rand.New(rand.NewPCG(1, 1))
	if got := b.Sample(r, 3, nil); len(got) != 0 {
		t.Fatalf("sampled %v from an empty book", got)
	}
	for i := 1; i <= 4; i++ {
		b.Add(addr(i))
	}
	b.Add(addr(1)) // known: now the newest, so 2 is the oldest
	b.Add(addr(5)) // evicts 2
	if b.Len() != 4 {
		t.Fatalf("len %d", b.Len())
	}
	all := b.Sample(r, 10, nil)
	slices.SortFunc(all, netip.AddrPort.Compare)
	if want := []netip.AddrPort{addr(1), addr(3), addr(4), addr(5)}; !slices.Equal(all, want) {
		t.Fatalf("book %v, want %v", all, want)
	}
	b.Remove(addr(3))
	b.Remove(addr(3))
	b.Remove(addr(9))
	if b.Len() != 3 {
		t.Fatalf("len %d after remove", b.Len())
	}
	for range 100 {
		got := b.Sample(r, 2, route.Except(addr(1)))
		if len(got) != 2 || got[0] == got[1] || slices.Contains(got, addr(1)) || slices.Contains(got, addr(3)) {
			t.Fatalf("sample %v", got)
		}
	}
	if got := b.Sample(r, 5, func(netip.AddrPort) bool { return true }); len(got) != 0 {
		t.Fatalf("all excluded, got %v", got)
	}
	if got := b.Sample(r, 0, nil); got != nil {
		t.Fatalf("n 0: %v", got)
	}
}

func TestBookSampleUniform(t *testing.T) {
	b := route.NewBook(100)
	for i := range 10 {
		b.Add(addr(i))
	}
	r := rand.New(rand.NewPCG(3, 4))
	counts := map[netip.AddrPort]int{}
	const draws = 30000
	for range draws {
		for _, a := range b.Sample(r, 3, route.Except(addr(0))) {
			counts[a]++
		}
	}
	if counts[addr(0)] != 0 || len(counts) != 9 {
		t.Fatalf("counts %v", counts)
	}
	for a, c := range counts { // each of 9 in 3 of 9 draws
		if c < draws/3*9/10 || c > draws/3*11/10 {
			t.Errorf("%v sampled %d times of %d", a, c, draws)
		}
	}
}

func TestBucket(t *testing.T) {
	b := route.NewBucket(10, 5) // a token every 100ms, 5 at most
	for i := range 5 {
		if !b.Allow(t0) {
			t.Fatalf("burst: %d refused", i)
		}
	}
	if b.Allow(t0) || b.Allow(t0.Add(99*time.Millisecond)) {
		t.Fatal("allowed past the burst")
	}
	if !b.Allow(t0.Add(100*time.Millisecond)) || b.Allow(t0.Add(100*time.Millisecond)) {
		t.Fatal("refill: one token per 100ms")
	}
	// A long idle refills to the burst, no more.
	now := t0.Add(time.Hour)
	n := 0
	for b.Allow(now) {
		n++
	}
	if n != 5 {
		t.Fatalf("after an hour idle: %d allowed", n)
	}
	// Steady state: the rate, over a minute of asking every millisecond.
	allowed := 0
	for ms := range 60000 {
		if b.Allow(now.Add(time.Duration(ms+1) * time.Millisecond)) {
			allowed++
		}
	}
	if allowed != 600 {
		t.Fatalf("a minute at 10/s: %d allowed", allowed)
	}
	// Time going backwards gives nothing back.
	if b.Allow(now.Add(-time.Hour)) {
		t.Fatal("allowed going backwards")
	}
}

func TestBucketEdges(t *testing.T) {
	b := route.NewBucket(0, 2) // never refills
	for i := range 2 {
		if !b.Allow(t0) {
			t.Fatalf("rate 0: burst %d refused", i)
		}
	}
	if b.Allow(t0.Add(1000 * time.Hour)) {
		t.Fatal("rate 0 refilled")
	}
	b = route.NewBucket(1e-30, 0) // too slow to count: never refills; burst at least 1
	if !b.Allow(t0) || b.Allow(t0.Add(1000*time.Hour)) {
		t.Fatal("tiny rate")
	}
	b = route.NewBucket(1e12, 1) // faster than the clock ticks
	for i := range 10 {
		if !b.Allow(t0.Add(time.Duration(i))) {
			t.Fatalf("fast: %d refused", i)
		}
	}
}
