package flood

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood/route"
	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// lookup is one search in flight, from Lookup to its end; the run loop owns it and hands its
// hits to the lookup's goroutine.
type lookup struct {
	ih      [20]byte
	ttl     int
	walkers int // 0: a flood
	start   time.Time
	hits    chan []netip.AddrPort // to the lookup's goroutine (nil for a Trace); past its buffer hits are dropped
	q       wire.Query
	waiting bool // for a first neighbour to send q to

	// What came back.
	nhits    int
	firstHop int           // hops to the holder of the first hit
	firstHit time.Duration // from the query to the first hit
}

// deliver hands a hit to the lookup; on the run loop.
func (n *Node) deliver(lk *lookup, h wire.Hit, now time.Time) {
	if lk.nhits == 0 {
		lk.firstHop, lk.firstHit = int(h.Hops), now.Sub(lk.start)
		n.stats.lookupsHit.Add(1)
		n.stats.firstHitNanos.Add(int64(lk.firstHit))
	}
	lk.nhits++
	n.stats.holders.Add(1)
	n.log.Debug("flood: hit", "infohash", metainfo.Hash(lk.ih), "peers", h.Peers, "hops", h.Hops, "after", now.Sub(lk.start))
	select {
	case lk.hits <- h.Peers:
	default:
	}
}

// Announce makes the node answer queries for a.InfoHash with its BitTorrent port. Nothing is
// sent: the overlay is searched, never told. A "stopped" announcement forgets the torrent.
func (n *Node) Announce(ctx context.Context, a peer.Announcement) error {
	if a.Port <= 0 || a.Port > 65535 {
		return fmt.Errorf("flood announce: bad port %d", a.Port)
	}
	n.stats.announces.Add(1)
	return n.do(ctx, func() {
		if a.Event == peer.EventStopped {
			delete(n.s.held, a.InfoHash)
			return
		}
		n.s.held[a.InfoHash] = uint16(a.Port)
	})
}

// Lookup searches the overlay for peers of ih: a query with a fresh ID, flooded to every
// neighbour (or sent as Walkers random walkers). The channel yields each peer address once,
// as hits come back, and is closed after LookupTimeout, when ctx ends or when the node closes.
// A node with no neighbour yet sends the query to its first one.
func (n *Node) Lookup(ctx context.Context, ih metainfo.Hash) (<-chan netip.AddrPort, error) {
	lk := &lookup{ih: ih, ttl: n.cfg.TTL, walkers: n.cfg.Walkers, hits: make(chan []netip.AddrPort, 64)}
	var id [16]byte
	var self []netip.AddrPort
	if err := n.do(ctx, func() { id, self = n.originate(lk) }); err != nil {
		return nil, err
	}
	n.stats.lookups.Add(1)
	out := make(chan netip.AddrPort)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.LookupTimeout)
	started := n.goFn(func() {
		defer cancel()
		defer close(out)
		seen := make(map[netip.AddrPort]bool)
		for _, a := range self {
			seen[a] = true
		}
		defer n.do(context.Background(), func() { delete(n.s.lookups, id) })
		for {
			select {
			case peers := <-lk.hits:
				for _, p := range peers {
					if seen[p] || !p.IsValid() || p.Port() == 0 || p.Addr().IsUnspecified() {
						continue
					}
					seen[p] = true
					n.stats.peersFound.Add(1)
					select {
					case out <- p:
					case <-ctx.Done():
						return
					case <-n.ctx.Done():
						return
					}
				}
			case <-ctx.Done():
				return
			case <-n.ctx.Done():
				return
			}
		}
	})
	if !started {
		cancel()
		n.do(context.Background(), func() { delete(n.s.lookups, id) })
		return nil, ErrClosed
	}
	return out, nil
}

// originate registers a lookup and sends its query; on the run loop. With no neighbour yet
// (a node that has just started), the query waits for the first one.
func (n *Node) originate(lk *lookup) (id [16]byte, self []netip.AddrPort) {
	s := &n.s
	randomID(s.rng, &id)
	now := time.Now()
	s.seen.Check(id, now) // our own query, coming back, is a duplicate
	lk.start = now
	s.lookups[id] = lk
	if port, ok := s.held[lk.ih]; ok {
		self = append(self, netip.AddrPortFrom(n.host, port))
	}
	lk.q = wire.Query{ID: id, TTL: route.ClampTTL(lk.ttl), InfoHash: lk.ih, Walk: lk.walkers > 0}
	lk.waiting = true
	n.log.Debug("flood: lookup", "infohash", metainfo.Hash(lk.ih), "neighbours", s.nbrs.Len(), "ttl", lk.ttl, "walkers", lk.walkers)
	if s.nbrs.Len() > 0 {
		n.launch(lk, s.nbrs.IDs())
	}
	return id, self
}

// launch sends a lookup's query to the neighbours ids: to each of them for a flood; for
// random walks, its walkers spread over them (at random when there are more walkers than
// neighbours).
func (n *Node) launch(lk *lookup, ids [][16]byte) {
	s := &n.s
	lk.waiting = false
	if !lk.q.Walk {
		for _, id := range ids {
			n.send(s.links[id], lk.q)
		}
		return
	}
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i := range lk.walkers {
		n.send(s.links[ids[i%len(ids)]], lk.q)
	}
}

// counters are the node's statistics, updated by its goroutines.
type counters struct {
	sent, received                        [wire.NumTypes]atomic.Int64
	dupDropped, rateDropped, garbled      atomic.Int64
	overflow, hitsLost, revisits          atomic.Int64
	queriesSeen, answered                 atomic.Int64
	announces, lookups, lookupsHit        atomic.Int64
	holders, peersFound, firstHitNanos    atomic.Int64
	accepted, refused, handshakeTimeouts  atomic.Int64
	ignored, forwardDropped, relayDropped atomic.Int64
	pingDropped, pongIgnored, hitDropped  atomic.Int64
}

// Stats is what the node has done and what its searches cost.
type Stats struct {
	Neighbours int `json:"neighbours"`
	Walkers    int `json:"walkers"` // 0: flooding
	// Sent and Received count frames by message type (wire.Type's name).
	Sent     map[string]int64 `json:"sent"`
	Received map[string]int64 `json:"received"`
	// DupDropped counts queries dropped as seen before; RateDropped, queries over a
	// neighbour's rate limit; Garbled, links closed for a malformed or oversized frame;
	// Overflow, frames dropped because a link's queue was full; HitsLost, hits whose reverse
	// path was gone; Revisits, walkers that came back to a node.
	DupDropped  int64 `json:"dup_dropped"`
	RateDropped int64 `json:"rate_dropped"`
	Garbled     int64 `json:"garbled"`
	Overflow    int64 `json:"overflow"`
	HitsLost    int64 `json:"hits_lost"`
	Revisits    int64 `json:"revisits"`
	// QueriesSeen counts distinct queries that reached this node (others' and walkers');
	// Answered, the hits it sent for them.
	QueriesSeen int64 `json:"queries_seen"`
	Answered    int64 `json:"answered"`
	// Lookups this node made; LookupsHit, those that got at least one hit; Holders, the hits
	// they got (each from one node that holds the torrent: the nodes a search is known to
	// have reached); PeersFound, the distinct peers they yielded.
	Lookups    int64 `json:"lookups"`
	LookupsHit int64 `json:"lookups_hit"`
	Holders    int64 `json:"holders"`
	PeersFound int64 `json:"peers_found"`
	// FirstHit is the mean time from a lookup's query to its first hit, over LookupsHit.
	FirstHit time.Duration `json:"first_hit_ns"`

	// Accepted counts incoming connections taken (into the handshake).
	Accepted int64 `json:"accepted"`
	// What the node's bounds turned away. Refused counts incoming connections closed at
	// accept, past Config.MaxLinks, MaxPending or MaxPendingPerIP; HandshakeTimeouts, links
	// closed because no Hello came within HandshakeTimeout; Ignored, frames from a link that
	// is not a neighbour (refused, or closing); PingDropped, pings over a neighbour's ping
	// rate, left unanswered; PongIgnored, pongs that answered no ping of ours (their
	// addresses are not learned); HitDropped, hits over a neighbour's hit rate;
	// ForwardDropped, copies of others' queries not forwarded to a neighbour, over the
	// link's forwarding rate (half of QueryRate: the rest is kept for the node's own lookups);
	// RelayDropped, queries answered but not passed on, over their sender's relay rate
	// (a quarter of QueryRate).
	Refused           int64 `json:"refused"`
	HandshakeTimeouts int64 `json:"handshake_timeouts"`
	Ignored           int64 `json:"ignored"`
	PingDropped       int64 `json:"ping_dropped"`
	PongIgnored       int64 `json:"pong_ignored"`
	HitDropped        int64 `json:"hit_dropped"`
	ForwardDropped    int64 `json:"forward_dropped"`
	RelayDropped      int64 `json:"relay_dropped"`
	// Links is how many links are open now (incoming and dialed, in the handshake,
	// neighbours or closing); Pending, how many incoming ones are in the handshake.
	Links   int `json:"links"`
	Pending int `json:"pending"`
}

// Dropped is what a node's bounds and limits turned away (see Stats), for a status line.
type Dropped struct {
	Refused           int64 `json:"refused"`
	HandshakeTimeouts int64 `json:"handshake_timeouts"`
	Garbled           int64 `json:"garbled"`
	RateDropped       int64 `json:"rate_dropped"`
	RelayDropped      int64 `json:"relay_dropped"`
	ForwardDropped    int64 `json:"forward_dropped"`
	PingDropped       int64 `json:"ping_dropped"`
	PongIgnored       int64 `json:"pong_ignored"`
	HitDropped        int64 `json:"hit_dropped"`
	Ignored           int64 `json:"ignored"`
	Overflow          int64 `json:"overflow"`
}

// Dropped is the part of st that counts what was turned away.
func (st Stats) Dropped() Dropped {
	return Dropped{
		Refused: st.Refused, HandshakeTimeouts: st.HandshakeTimeouts, Garbled: st.Garbled,
		RateDropped: st.RateDropped, RelayDropped: st.RelayDropped, ForwardDropped: st.ForwardDropped,
		PingDropped: st.PingDropped, PongIgnored: st.PongIgnored, HitDropped: st.HitDropped,
		Ignored: st.Ignored, Overflow: st.Overflow,
	}
}

// Total is every count of d added up.
func (d Dropped) Total() int64 {
	return d.Refused + d.HandshakeTimeouts + d.Garbled + d.RateDropped + d.RelayDropped +
		d.ForwardDropped + d.PingDropped + d.PongIgnored + d.HitDropped + d.Ignored + d.Overflow
}

// Stats returns the node's counters.
func (n *Node) Stats() peer.SearchStats {
	st := n.FloodStats()
	var sent, recv int64
	for _, v := range st.Sent {
		sent += v
	}
	for _, v := range st.Received {
		recv += v
	}
	return peer.SearchStats{
		Announces: n.stats.announces.Load(), Lookups: st.Lookups,
		Sent: sent, Received: recv, NodesContacted: st.Holders, PeersFound: st.PeersFound,
	}
}

// FloodStats is Stats in full.
func (n *Node) FloodStats() Stats {
	c := &n.stats
	st := Stats{
		Neighbours: n.Neighbours(), Walkers: n.cfg.Walkers,
		Sent: make(map[string]int64), Received: make(map[string]int64),
		DupDropped: c.dupDropped.Load(), RateDropped: c.rateDropped.Load(), Garbled: c.garbled.Load(),
		Overflow: c.overflow.Load(), HitsLost: c.hitsLost.Load(), Revisits: c.revisits.Load(),
		QueriesSeen: c.queriesSeen.Load(), Answered: c.answered.Load(),
		Lookups: c.lookups.Load(), LookupsHit: c.lookupsHit.Load(),
		Holders: c.holders.Load(), PeersFound: c.peersFound.Load(),
		Accepted: c.accepted.Load(), Refused: c.refused.Load(), HandshakeTimeouts: c.handshakeTimeouts.Load(), Ignored: c.ignored.Load(),
		PingDropped: c.pingDropped.Load(), PongIgnored: c.pongIgnored.Load(), HitDropped: c.hitDropped.Load(),
		ForwardDropped: c.forwardDropped.Load(), RelayDropped: c.relayDropped.Load(),
	}
	st.Links, st.Pending = n.Open()
	for t := wire.TypeHello; t < wire.NumTypes; t++ {
		st.Sent[t.String()] = c.sent[t].Load()
		st.Received[t.String()] = c.received[t].Load()
	}
	if st.LookupsHit > 0 {
		st.FirstHit = time.Duration(c.firstHitNanos.Load() / st.LookupsHit)
	}
	return st
}
