package dht

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// Meter counts get_peers traffic: the queries of lookups and announces and the replies to
// them, the messages whose number is the cost of a DHT search. Pings, find_node (joining,
// refreshing the table) and announce_peer are not counted.
//
// Every Node has a Meter: its own, or Config.Meter, which many nodes can share. A Meter
// shared by every node of a network counts that whole network's get_peers traffic: each
// query once, where it was sent, and each reply once, where it was sent. It also knows which
// queries still wait for their reply, so that a caller can wait until a search's last
// message has arrived (Settle).
type Meter struct {
	mu       sync.Mutex
	t        Traffic
	asked    map[txKey]time.Time // get_peers queries sent whose reply has not come yet
	toAnswer map[txKey]time.Time // get_peers queries received, not answered yet
	settled  chan struct{}       // closed, and replaced, each time asked becomes empty

	prunedAsked, prunedToAnswer time.Time // last searches of the full maps for old entries
}

// Traffic is what a Meter counted.
type Traffic struct {
	Queries    int64 // get_peers queries sent
	QueryBytes int64
	Replies    int64 // replies sent to get_peers queries (error replies included)
	ReplyBytes int64
	Received   int64 // replies received to the get_peers queries sent
	RecvBytes  int64
}

// Messages is how many get_peers datagrams were sent: queries and replies.
func (t Traffic) Messages() int64 { return t.Queries + t.Replies }

// Bytes is the size of those datagrams.
func (t Traffic) Bytes() int64 { return t.QueryBytes + t.ReplyBytes }

// Sub is t minus u: the traffic between two readings.
func (t Traffic) Sub(u Traffic) Traffic {
	return Traffic{
		Queries: t.Queries - u.Queries, QueryBytes: t.QueryBytes - u.QueryBytes,
		Replies: t.Replies - u.Replies, ReplyBytes: t.ReplyBytes - u.ReplyBytes,
		Received: t.Received - u.Received, RecvBytes: t.RecvBytes - u.RecvBytes,
	}
}

// txKey names a query: its querier and its transaction id.
type txKey struct {
	querier netip.AddrPort
	t       string
}

// Bounds of the Meter's memory of open queries: past maxOpen, queries older than openTTL are
// forgotten (their replies were lost, or will not be counted).
const (
	maxOpen = 4096
	openTTL = time.Minute
)

// NewMeter returns an empty Meter.
func NewMeter() *Meter {
	return &Meter{asked: make(map[txKey]time.Time), toAnswer: make(map[txKey]time.Time), settled: make(chan struct{})}
}

// Traffic is what m has counted so far.
func (m *Meter) Traffic() Traffic {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

// Pending is how many get_peers queries counted by m still wait for their reply.
func (m *Meter) Pending() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.asked)
}

// Settle waits until every get_peers query counted by m has had its reply received. When ctx
// ends first, the queries still waiting are taken as lost: m forgets them (a reply that
// comes later is not counted as received) and Settle returns how many, with ctx's error.
func (m *Meter) Settle(ctx context.Context) (lost int, err error) {
	for {
		m.mu.Lock()
		if len(m.asked) == 0 {
			m.mu.Unlock()
			return 0, nil
		}
		ch := m.settled
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			m.mu.Lock()
			lost = len(m.asked)
			clear(m.asked)
			m.mu.Unlock()
			return lost, ctx.Err()
		}
	}
}

// The four events of a get_peers exchange, as a node's socket sees them (countingConn): the
// querier writes the query and later reads the reply, keyed by its own address; the queried
// node reads the query and writes the reply, keyed by the querier's address. A datagram is
// counted as sent just before it is written (the reply may be read before the write returns);
// the undo function takes it back if the write fails.

func (m *Meter) querySent(k txKey, size int) (undo func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t.Queries++
	m.t.QueryBytes += int64(size)
	now := time.Now()
	prune(m.asked, &m.prunedAsked, now)
	m.asked[k] = now
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.t.Queries--
		m.t.QueryBytes -= int64(size)
		if _, ok := m.asked[k]; ok {
			delete(m.asked, k)
			m.wake()
		}
	}
}

func (m *Meter) replySent(k txKey, size int) (undo func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.toAnswer[k]; !ok {
		return nil
	}
	delete(m.toAnswer, k)
	m.t.Replies++
	m.t.ReplyBytes += int64(size)
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.t.Replies--
		m.t.ReplyBytes -= int64(size)
	}
}

func (m *Meter) queryRead(k txKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	prune(m.toAnswer, &m.prunedToAnswer, now)
	if len(m.toAnswer) >= 4*maxOpen {
		return // a flood of queries: their replies go uncounted rather than the memory unbounded
	}
	m.toAnswer[k] = now
}

func (m *Meter) replyRead(k txKey, size int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.asked[k]; !ok {
		return
	}
	delete(m.asked, k)
	m.t.Received++
	m.t.RecvBytes += int64(size)
	m.wake()
}

// wake tells Settle when no query waits any more; m.mu is held.
func (m *Meter) wake() {
	if len(m.asked) == 0 {
		close(m.settled)
		m.settled = make(chan struct{})
	}
}

// prune forgets the old entries of a full map (once per pruneEvery at most).
func prune(open map[txKey]time.Time, last *time.Time, now time.Time) {
	if len(open) < maxOpen || !pruneDue(last, now) {
		return
	}
	for k, at := range open {
		if now.Sub(at) > openTTL {
			delete(open, k)
		}
	}
}
