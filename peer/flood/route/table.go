package route

import "time"

// Seen is the table of query IDs already handled, for dropping duplicates. An entry lasts
// ttl; past capacity the oldest entry is evicted first.
type Seen struct{ t table[struct{}] }

// NewSeen returns an empty table of at most capacity (at least 1) entries, each kept for
// ttl (0 or less: until evicted).
func NewSeen(capacity int, ttl time.Duration) *Seen {
	return &Seen{t: newTable[struct{}](capacity, ttl)}
}

// Check records id and reports whether it was already recorded and has not expired. A
// duplicate does not renew its entry: it expires ttl after the first sighting.
func (s *Seen) Check(id ID, now time.Time) (dup bool) {
	if _, ok := s.t.get(id, now); ok {
		return true
	}
	s.t.put(id, struct{}{}, now)
	return false
}

// Len is the number of entries held, expired ones not yet swept included.
func (s *Seen) Len() int { return s.t.len() }

// Paths is the reverse path of hits: for each query ID, the neighbour it came from, which
// a hit for it is sent back to. The zero ID means the node is the query's origin. An entry
// lasts ttl; past capacity the oldest entry is evicted first.
type Paths struct{ t table[ID] }

// NewPaths returns an empty table of at most capacity (at least 1) entries, each kept for
// ttl (0 or less: until evicted).
func NewPaths(capacity int, ttl time.Duration) *Paths {
	return &Paths{t: newTable[ID](capacity, ttl)}
}

// Put records that query q came from neighbour from (the zero ID: from this node). Putting
// a query again replaces its entry and starts its ttl over.
func (p *Paths) Put(q ID, from ID, now time.Time) { p.t.put(q, from, now) }

// Get is the neighbour query q came from; false if unknown or expired.
func (p *Paths) Get(q ID, now time.Time) (from ID, ok bool) { return p.t.get(q, now) }

// Len is the number of entries held, expired ones not yet swept included.
func (p *Paths) Len() int { return p.t.len() }

// table maps IDs to values, each entry expiring ttl after it was put, at most capacity
// entries, the oldest evicted first. Entries are queued in the order they were put; an
// entry put again leaves its old queue slot behind, stale (its seq no longer matches), to
// be skipped when it reaches the front.
type table[V any] struct {
	capacity int
	ttl      time.Duration // 0: no expiry
	m        map[ID]entry[V]
	q        []slot // q[head:] is live and stale slots, oldest first
	head     int
	seq      uint64
}

type entry[V any] struct {
	v   V
	at  time.Time
	seq uint64
}

type slot struct {
	id  ID
	seq uint64
	at  time.Time
}

func newTable[V any](capacity int, ttl time.Duration) table[V] {
	return table[V]{capacity: max(capacity, 1), ttl: max(ttl, 0), m: make(map[ID]entry[V])}
}

func (t *table[V]) len() int { return len(t.m) }

func (t *table[V]) expired(at, now time.Time) bool {
	return t.ttl > 0 && now.Sub(at) >= t.ttl
}

func (t *table[V]) get(id ID, now time.Time) (V, bool) {
	t.sweep(now)
	e, ok := t.m[id]
	if !ok || t.expired(e.at, now) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (t *table[V]) put(id ID, v V, now time.Time) {
	t.sweep(now)
	t.seq++
	t.m[id] = entry[V]{v: v, at: now, seq: t.seq}
	t.q = append(t.q, slot{id: id, seq: t.seq, at: now})
	for len(t.m) > t.capacity {
		t.pop()
	}
	// Stale slots pile up only if the same IDs are put again and again; keep the queue
	// within twice the entries.
	if len(t.q)-t.head > 2*len(t.m)+16 {
		t.compact()
	}
}

// sweep drops expired and stale slots from the front of the queue. Slots are in the order
// they were put, so with now never going backwards the expired ones are all at the front.
func (t *table[V]) sweep(now time.Time) {
	for t.head < len(t.q) {
		s := t.q[t.head]
		if e, ok := t.m[s.id]; ok && e.seq == s.seq && !t.expired(s.at, now) {
			return
		}
		t.pop()
	}
}

// pop drops the front slot, and its entry if the slot is still the entry's.
func (t *table[V]) pop() {
	s := t.q[t.head]
	t.q[t.head] = slot{}
	t.head++
	if e, ok := t.m[s.id]; ok && e.seq == s.seq {
		delete(t.m, s.id)
	}
	if t.head == len(t.q) {
		t.q, t.head = t.q[:0], 0
	} else if t.head > 64 && t.head > len(t.q)/2 {
		t.compact()
	}
}

// compact moves the live slots to the front of the queue, dropping stale ones.
func (t *table[V]) compact() {
	q := t.q[:0]
	for _, s := range t.q[t.head:] {
		if e, ok := t.m[s.id]; ok && e.seq == s.seq {
			q = append(q, s)
		}
	}
	clear(t.q[len(q):])
	t.q, t.head = q, 0
}
