package flood

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// Meter counts, across every node that shares it (Config.Meter), what an experiment on the
// overlay measures: the query and hit frames written and their bytes, the nodes a query
// reached, the query and hit frames still in flight, the nodes that have at least Degree
// neighbours, and how often a node gained or lost one. Background traffic (Hello, Ping,
// Pong, Bye) is not counted, so with lookups run one at a time the difference of two Counts
// is what one lookup cost.
//
// A frame is in flight from the moment a node queues it on a link until the receiving node
// has handled it (answered and forwarded it: its own frames are then queued) or it is known
// lost (its link failed before it was written). So InFlight falls to 0 only once a flood has
// died out, and WaitIdle waits for that. A link closed in order (a Bye, a refusal) loses
// nothing: each side reads on to the other's end. A frame written to a link that breaks
// before the other side reads it is lost without being known to be: InFlight then never
// falls back to 0, and WaitIdle runs into its context's deadline. In a settled overlay links
// do not break.
//
// A Meter is safe for concurrent use.
type Meter struct {
	queries, hits, bytes, reached atomic.Int64
	inflight, ready, churn        atomic.Int64

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) when InFlight falls to 0 or Ready changes
}

// NewMeter returns a meter with every count at 0.
func NewMeter() *Meter { return &Meter{changed: make(chan struct{})} }

// Count is a snapshot of a Meter's counters.
type Count struct {
	Queries int64 // query frames written, every copy and every walker's step
	Hits    int64 // hit frames written, by holders and by the nodes passing them back
	Bytes   int64 // bytes of those frames, headers included
	// Reached counts the first arrivals of queries: each node a query reached counts once
	// (its origin not included).
	Reached int64
}

// Messages is Queries + Hits.
func (c Count) Messages() int64 { return c.Queries + c.Hits }

// Sub is c - o: what happened between the snapshots o and c.
func (c Count) Sub(o Count) Count {
	return Count{Queries: c.Queries - o.Queries, Hits: c.Hits - o.Hits, Bytes: c.Bytes - o.Bytes, Reached: c.Reached - o.Reached}
}

// Count is the counters now.
func (m *Meter) Count() Count {
	return Count{Queries: m.queries.Load(), Hits: m.hits.Load(), Bytes: m.bytes.Load(), Reached: m.reached.Load()}
}

// InFlight is how many query and hit frames are queued, on the wire or not yet handled.
func (m *Meter) InFlight() int64 { return m.inflight.Load() }

// Ready is how many of the meter's nodes have at least Degree neighbours.
func (m *Meter) Ready() int { return int(m.ready.Load()) }

// Churn counts the times a node of the meter gained or lost a neighbour: when it stays the
// same a while, and Ready is every node, the overlay has settled (dials and refusals under
// way when the last node became ready are over).
func (m *Meter) Churn() int64 { return m.churn.Load() }

// WaitIdle waits until no query or hit frame is in flight, or ctx ends.
func (m *Meter) WaitIdle(ctx context.Context) error {
	return m.wait(ctx, func() bool { return m.inflight.Load() == 0 })
}

// WaitReady waits until at least n nodes have Degree neighbours or more, or ctx ends.
func (m *Meter) WaitReady(ctx context.Context, n int) error {
	return m.wait(ctx, func() bool { return m.ready.Load() >= int64(n) })
}

func (m *Meter) wait(ctx context.Context, done func() bool) error {
	for {
		m.mu.Lock()
		ch := m.changed // taken before the check: a change after it closes ch
		m.mu.Unlock()
		if done() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *Meter) notify() {
	m.mu.Lock()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// metered reports whether frames of type t are a lookup's: counted and followed in flight.
func metered(t wire.Type) bool { return t == wire.TypeQuery || t == wire.TypeHit }

// The node's hooks; each is a no-op on a nil Meter.

// queued counts a metered frame into flight.
func (m *Meter) queued() {
	if m != nil {
		m.inflight.Add(1)
	}
}

// landed takes k metered frames out of flight: handled, or lost.
func (m *Meter) landed(k int64) {
	if m != nil && k > 0 && m.inflight.Add(-k) == 0 {
		m.notify()
	}
}

// written counts a metered frame of size bytes written to a link; a negative size takes
// back a frame whose write failed.
func (m *Meter) written(t wire.Type, size int) {
	if m == nil {
		return
	}
	k := int64(1)
	if size < 0 {
		k = -1
	}
	if t == wire.TypeQuery {
		m.queries.Add(k)
	} else {
		m.hits.Add(k)
	}
	m.bytes.Add(int64(size))
}

// reach counts a query's first arrival at a node.
func (m *Meter) reach() {
	if m != nil {
		m.reached.Add(1)
	}
}

// linked counts a neighbour gained or lost.
func (m *Meter) linked() {
	if m != nil {
		m.churn.Add(1)
	}
}

// readyChanged moves a node into (+1) or out of (-1) the ready count.
func (m *Meter) readyChanged(d int64) {
	if m != nil {
		m.ready.Add(d)
		m.notify()
	}
}
