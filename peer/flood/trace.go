package flood

import (
	"context"
	"fmt"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer/flood/route"
)

// Trace is one lookup run for measurement: a query with its own TTL and walkers, whose
// origin records what comes back until End. Its cost network-wide is the Meter's.
type Trace struct {
	n  *Node
	id [16]byte
	lk *lookup
}

// TraceResult is what a traced lookup's origin saw.
type TraceResult struct {
	Hits     int           // hits received (each from a node that holds the torrent)
	Hops     int           // hops from the origin to the holder of the first hit
	FirstHit time.Duration // from sending the query to the first hit
}

// Found reports whether any hit came back.
func (r TraceResult) Found() bool { return r.Hits > 0 }

// Trace sends one query for ih: flooded with ttl hops (1..route.MaxTTL) when walkers is 0,
// else as walkers random walkers of ttl steps each, whatever the node's Config says. Hits
// are recorded, not handed out; End reads them. A node with no neighbour yet sends the query
// to its first one.
func (n *Node) Trace(ctx context.Context, ih metainfo.Hash, ttl, walkers int) (*Trace, error) {
	if ttl < 1 || ttl > route.MaxTTL {
		return nil, fmt.Errorf("flood: ttl %d: want 1..%d", ttl, route.MaxTTL)
	}
	if walkers < 0 {
		return nil, fmt.Errorf("flood: %d walkers", walkers)
	}
	t := &Trace{n: n, lk: &lookup{ih: ih, ttl: ttl, walkers: walkers}}
	if err := n.do(ctx, func() { t.id, _ = n.originate(t.lk) }); err != nil {
		return nil, err
	}
	n.stats.lookups.Add(1)
	return t, nil
}

// End stops recording and returns what came back. Hits arriving later are dropped. To have
// every hit of a flood, wait for the Meter's WaitIdle first.
func (t *Trace) End(ctx context.Context) (TraceResult, error) {
	var r TraceResult
	err := t.n.do(ctx, func() {
		r = TraceResult{Hits: t.lk.nhits, Hops: t.lk.firstHop, FirstHit: t.lk.firstHit}
		delete(t.n.s.lookups, t.id)
	})
	return r, err
}
