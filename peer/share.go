package peer

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// How a leecher shares a swarm with other leechers (the swarm policy).
//
// The library alone makes every leecher of a fresh swarm fetch nearly everything from the
// seeds: it orders pieces by priority, then rarest first, then by index, so all leechers want
// the same pieces at the same time, and the pieces only a seed holds come first; and it
// considers only the first MaxUnverifiedBytes (64 MiB) of that order for requests to any peer,
// so once a leecher lacks more than that of what only the seeds hold, what the other leechers
// hold is out of its reach. On loopback an unthrottled seed then answers everything (8 leechers
// of 256 MiB: the seed uploaded 4.2-4.5 times the content).
//
// A spreader, while its torrent is downloading and it is connected to both seeds and other
// leechers, does instead what super-seeding (BEP 16) does from the seed's side:
//   - The pieces no connected leecher holds are split among the leechers that see each other,
//     without talking: each piece belongs to the leecher whose peer ID scores it highest
//     (rendezvous hashing). A leecher fetches a few of its own at a time from the seeds (high
//     priority, at random among them); when it has none left, it takes a share of the rest.
//   - The other pieces only seeds hold wait (priority none): another leecher fetches them, and
//     this one then gets them from it.
//   - The request window to each seed is cut to half of what its high pieces still need, so
//     that requests to a seed do not spill over to pieces another leecher is fetching from it.
//
// So a seed sends each piece to about one leecher, and the leechers trade the rest. Until the
// first seed connects, a leecher holds all but a few pieces, as the library would otherwise
// fill its window to that seed with the first pieces at once; for a second after, the peers
// known but not connected yet count as leechers coming. When the leechers hold pieces this
// one needs but deliver nothing for a second, or it is connected to seeds only (a plain
// download) with none coming, or to no seed, it steps aside: every piece normal, the
// library's own windows. Config.InOrder turns it off.
//
// The windows are set through PeerConn.PeerMaxRequests, an exported field the library reads
// under its client lock; the library has no hook for a per-peer request policy.

// spreadEvery is how often a spreader looks at what its peers hold.
const spreadEvery = 100 * time.Millisecond

// firstEvery is how often it looks until the first seed connects, and while it holds pieces
// back for leechers it knows of but is not connected to; for knownFor after the first seed
// connects, those count as leechers coming.
const (
	firstEvery = 5 * time.Millisecond
	knownFor   = time.Second
)

// starvedAfter is how many steps in a row the leechers may hold pieces this one needs and
// deliver nothing before it steps aside.
const starvedAfter = 10

// chunkSize is the library's request size.
const chunkSize = 16 << 10

// highBytes is how much a leecher fetches from the seeds at a time, in whole pieces (at least
// minHigh).
const (
	highBytes = 4 << 20
	minHigh   = 4
)

// spreader is a leecher's piece picker on top of the library's; its goroutine owns it.
type spreader struct {
	t    *torrent.Torrent
	info *metainfo.Info
	self torrent.PeerID
	n    int
	rng  *rand.Rand
	want int // pieces fetched from the seeds at a time

	high    map[int]bool
	prio    []torrent.PiecePriority // what the spreader set, for each piece
	capped  map[*torrent.PeerConn]bool
	windows *seedWindows // the node's

	ids   []torrent.PeerID // the leechers owner was worked out for, this one first
	owner []bool           // which pieces are this leecher's among ids

	first time.Time // the first connection
	slow  bool      // stepping every spreadEvery
	// expecting says the last step held pieces back for leechers known but not connected:
	// until they connect (or turn out to be a second dial to a seed, or this leecher itself
	// listed by a tracker), it looks again every firstEvery.
	expecting bool

	have, held []bool // by this leecher, by a connected leecher: a step's scratch

	served  int64 // what the leechers had delivered at the last step
	starved int   // steps in a row they held pieces this one needs and delivered nothing
}

// startSpread starts the spreader of a torrent about to download; stop stops it and waits.
func (t *Torrent) startSpread(ctx context.Context) (stop func()) {
	if t.opts.Seed || t.node.cfg.InOrder || t.t.Complete().Bool() {
		return func() {}
	}
	info := t.t.Info()
	s := &spreader{
		t: t.t, info: info, self: t.node.cl.PeerID(), n: info.NumPieces(),
		want: max(minHigh, int(highBytes/info.PieceLength)),
		rng:  rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		high: make(map[int]bool), prio: make([]torrent.PiecePriority, info.NumPieces()),
		windows: &t.node.windows,
	}
	for i := range s.prio {
		s.prio[i] = torrent.PiecePriorityNormal // as DownloadAll left them
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.stepAside(true)
		// The library requests from the first peer as soon as it connects: look often
		// until then.
		tick := time.NewTicker(firstEvery)
		defer tick.Stop()
		for s.step() {
			if !s.first.IsZero() && !s.expecting && !s.slow {
				tick.Reset(spreadEvery)
				s.slow = true
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

// step looks at the peers and sets the priorities and the seeds' windows; it says false
// once every piece is complete.
func (s *spreader) step() bool {
	// have and held are the spreader's own, cleared each step (a step runs every 5-100 ms).
	s.have, s.held = resetBools(s.have, s.n), resetBools(s.held, s.n)
	have, held := s.have, s.held
	missing, i := 0, 0
	for _, r := range s.t.PieceStateRuns() {
		for range r.Length {
			have[i] = r.Complete
			if !r.Complete {
				missing++
			}
			i++
		}
	}
	if missing == 0 {
		return false
	}
	var seeds []*torrent.PeerConn
	ids := []torrent.PeerID{s.self}
	var served int64
	for _, pc := range s.t.PeerConns() {
		bm := pc.PeerPieces()
		if bm.GetCardinality() >= uint64(s.n) {
			seeds = append(seeds, pc)
			continue
		}
		ids = append(ids, pc.PeerID)
		st := pc.Stats()
		served += st.BytesReadUsefulData.Int64()
		it := bm.Iterator()
		for it.HasNext() {
			if i := int(it.Next()); i < s.n {
				held[i] = true
			}
		}
	}
	var lacking []int // what only the seeds hold
	needed := false   // from the leechers
	for i := range s.n {
		switch {
		case have[i]:
		case held[i]:
			needed = true
		default:
			lacking = append(lacking, i)
		}
	}
	if needed && served <= s.served {
		s.starved++
	} else {
		s.starved = 0
	}
	s.served = served
	// Until the first seed connects, and for knownFor after, the peers known but not
	// connected yet count as leechers coming: a tracker lists them all at once, and the
	// library fills its window to the first seed as soon as it connects. A plain download,
	// with no other peer known, has only its first moments so held.
	if len(seeds) > 0 && s.first.IsZero() {
		s.first = time.Now()
	}
	early := s.first.IsZero()
	leechers := len(ids) // and this one
	s.expecting = false
	if len(ids) == 1 && (early || time.Since(s.first) < knownFor) {
		st := s.t.Stats() // not KnownSwarm, which reads without the client lock
		leechers = st.TotalPeers - len(seeds) + 1
		if len(seeds) == 0 {
			leechers-- // one of them is a seed, surely
		}
		leechers = max(1, leechers)
		s.expecting = leechers > 1
	}
	switch {
	case s.starved >= starvedAfter, !early && len(seeds) == 0, !early && leechers <= 1:
		s.stepAside(false)
		return true
	}

	for i := range s.high {
		if have[i] || held[i] {
			delete(s.high, i)
		}
	}
	s.pick(lacking, ids, leechers)
	for i := range s.n {
		p := torrent.PiecePriorityNormal
		switch {
		case have[i]:
			continue
		case s.high[i]:
			p = torrent.PiecePriorityHigh
		case !held[i]:
			p = torrent.PiecePriorityNone
		}
		s.setPriority(i, p)
	}
	window := 0 // the library's own
	if len(s.high) > 0 {
		rem := 0
		for i := range s.high {
			rem += int((s.t.PieceBytesMissing(i) + chunkSize - 1) / chunkSize)
		}
		window = max(1, rem/2)
	}
	s.setWindows(seeds, window)
	return true
}

// pick fills the high set with pieces of lacking: this leecher's own among the leechers ids,
// at random; when it has none left, or sees no other leecher yet, its share (of leechers) of
// the others. Pieces begun stay; others that are no longer this leecher's, or beyond its
// share, go.
func (s *spreader) pick(lacking []int, ids []torrent.PeerID, leechers int) {
	var pool []int
	owned := 0
	if len(ids) > 1 {
		s.own(ids)
		for _, i := range lacking {
			if s.owner[i] {
				owned++
				if !s.high[i] {
					pool = append(pool, i)
				}
			}
		}
	}
	k := s.want
	if owned == 0 {
		// The others' pieces are late: take a share, so that the seeds send each piece
		// to about one leecher still.
		k = min(s.want, max(1, len(lacking)/leechers))
		if len(ids) == 1 {
			// No other leecher connected yet, only known or not even: a few at a time,
			// until they connect and the pieces can be split.
			k = min(k, minHigh)
		}
		pool = pool[:0]
		for _, i := range lacking {
			if !s.high[i] {
				pool = append(pool, i)
			}
		}
	}
	for i := range s.high {
		if len(s.high) <= k && (owned == 0 || s.owner[i]) {
			continue
		}
		if s.t.PieceBytesMissing(i) == s.info.Piece(i).Length() { // not begun
			delete(s.high, i)
		}
	}
	s.rng.Shuffle(len(pool), func(a, b int) { pool[a], pool[b] = pool[b], pool[a] })
	for _, i := range pool[:max(0, min(len(pool), k-len(s.high)))] {
		s.high[i] = true
	}
}

// own works out which pieces are this leecher's among ids (itself first), when they changed.
func (s *spreader) own(ids []torrent.PeerID) {
	slices.SortFunc(ids[1:], func(a, b torrent.PeerID) int { return slices.Compare(a[:], b[:]) })
	if s.owner != nil && slices.Equal(ids, s.ids) {
		return
	}
	s.ids = slices.Clone(ids)
	s.owner = make([]bool, s.n)
	for i := range s.n {
		mine := score(ids[0], i)
		s.owner[i] = true
		for _, id := range ids[1:] {
			if score(id, i) > mine {
				s.owner[i] = false
				break
			}
		}
	}
}

// score ranks piece i for the leecher with peer ID id (FNV-1a, then splitmix64's finalizer):
// each piece goes to the leecher that scores it highest, the same for every leecher that
// sees the same leechers.
func score(id torrent.PeerID, i int) uint64 {
	var b [28]byte
	copy(b[:], id[:])
	binary.LittleEndian.PutUint64(b[20:], uint64(i))
	x := uint64(14695981039346656037)
	for _, c := range b {
		x = (x ^ uint64(c)) * 1099511628211
	}
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func (s *spreader) setPriority(i int, p torrent.PiecePriority) {
	if s.prio[i] != p {
		s.t.Piece(i).SetPriority(p)
		s.prio[i] = p
	}
}

// stepAside gives every piece back to the library: normal priority, the seeds' own windows
// (restored as their next chunk arrives). At the end, the spreader forgets its connections.
func (s *spreader) stepAside(end bool) {
	clear(s.high)
	for i := range s.n {
		s.setPriority(i, torrent.PiecePriorityNormal)
	}
	s.setWindows(nil, 0)
	if end {
		for pc := range s.capped {
			s.windows.Delete(pc)
		}
		s.capped = nil
	}
}

// setWindows asks for a request window of window (0: the peer's own) to each of seeds, and
// gives the others it had set one for theirs back; it forgets those no longer connected.
func (s *spreader) setWindows(seeds []*torrent.PeerConn, window int) {
	open := make(map[*torrent.PeerConn]bool)
	for _, pc := range s.t.PeerConns() {
		open[pc] = true
	}
	if s.capped == nil {
		s.capped = make(map[*torrent.PeerConn]bool)
	}
	for pc := range s.capped {
		if !open[pc] {
			s.windows.Delete(pc)
			delete(s.capped, pc)
		} else if v, ok := s.windows.Load(pc); ok {
			v.(*seedWindow).want.Store(0)
		}
	}
	for _, pc := range seeds {
		s.capped[pc] = true
		v, _ := s.windows.LoadOrStore(pc, new(seedWindow))
		v.(*seedWindow).want.Store(int32(window))
	}
}

// seedWindows holds, for each connection to a seed whose request window a spreader sets, the
// window it wants: one per Node. The library reads PeerConn.PeerMaxRequests under its client
// lock, so the window is set by applyWindow, which runs under that lock, as each chunk arrives.
type seedWindows struct{ sync.Map } // *torrent.PeerConn -> *seedWindow

type seedWindow struct {
	want      atomic.Int32 // 0: the peer's own
	orig, set int          // under the client lock
}

// applyWindow sets p's request window to what its spreader wants. The caller holds the
// client lock: it is a ReceivedUsefulData callback.
func (windows *seedWindows) applyWindow(p *torrent.Peer) {
	if p == nil {
		return
	}
	pc, ok := p.TryAsPeerConn()
	if !ok {
		return
	}
	v, ok := windows.Load(pc)
	if !ok {
		return
	}
	w := v.(*seedWindow)
	if pc.PeerMaxRequests != w.set {
		w.orig = pc.PeerMaxRequests // the library's own, from the peer's handshake
	}
	n := int(w.want.Load())
	if n == 0 {
		pc.PeerMaxRequests = w.orig
		windows.Delete(pc)
		return
	}
	n = min(n, w.orig)
	pc.PeerMaxRequests, w.set = n, n
}

// resetBools returns b with n elements, all false, reusing its array.
func resetBools(b []bool, n int) []bool {
	if cap(b) < n {
		return make([]bool, n)
	}
	b = b[:n]
	clear(b)
	return b
}
