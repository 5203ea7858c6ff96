package flood

import (
	"net/netip"
	"slices"
	"time"

	"github.com/shoalp2p/shoal/peer/flood/route"
	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// Bye reasons.
const (
	byeFull      = "full"
	byeDuplicate = "duplicate link"
	byeSelf      = "self"
	byeProtocol  = "protocol"
	byeVersion   = "version"
)

// run is the node's event loop: the only goroutine that touches n.s.
func (n *Node) run() {
	defer n.wg.Done()
	n.s.every = maintainEvery
	n.s.tick = time.NewTicker(n.s.every)
	defer n.s.tick.Stop()
	n.maintain(time.Now())
	for {
		select {
		case <-n.ctx.Done():
			if n.s.ready {
				n.meter.readyChanged(-1)
			}
			return
		case f := <-n.cmds:
			f()
		case ev := <-n.events:
			n.handle(ev)
		case now := <-n.s.tick.C:
			n.maintain(now)
		}
	}
}

// maintain dials more neighbours while there are fewer than Degree (from the book, else the
// bootstrap nodes), and pings neighbours (at once when it has no address left to dial: their
// Pongs bring more).
func (n *Node) maintain(now time.Time) {
	s := &n.s
	want := n.cfg.Degree - s.nbrs.Len() - len(s.dialing)
	if want > 0 {
		exclude := []netip.AddrPort{n.tr.Addr()}
		for _, l := range s.links {
			exclude = append(exclude, l.listen)
		}
		for a := range s.dialing {
			exclude = append(exclude, a)
		}
		addrs := s.book.Sample(s.rng, want, route.Except(exclude...))
		if len(addrs) == 0 {
			// Nobody left to dial (dead addresses are dropped from the book): the bootstrap
			// nodes again, all of them while the node has no neighbour, else as many as it
			// wants. A full one answers with addresses of others, so a few nodes that know
			// only each other are not stuck short of neighbours.
			for _, b := range n.cfg.Bootstrap {
				if !slices.Contains(exclude, b) && (s.nbrs.Len() == 0 || len(addrs) < want) {
					addrs = append(addrs, b)
				}
			}
		}
		for _, a := range addrs {
			s.dialing[a] = true
			n.goFn(func() { n.dial(a) })
		}
		if len(addrs) == 0 && s.nbrs.Len() > 0 {
			// Nobody left to dial: ask the neighbours for addresses now rather than at the
			// next round of pings.
			s.lastPing = time.Time{}
		}
	}
	if now.Sub(s.lastPing) >= n.cfg.IdleTimeout/3-maintainEvery {
		s.lastPing = now
		for _, l := range s.links {
			n.ping(l)
		}
	}
	n.pace()
}

// pace sets how often the run loop wakes: every maintainEvery while the node is short of
// neighbours or dialing, else every IdleTimeout/3, to ping.
func (n *Node) pace() {
	s := &n.s
	every := max(n.cfg.IdleTimeout/3, maintainEvery)
	if s.nbrs.Len() < n.cfg.Degree || len(s.dialing) > 0 {
		every = maintainEvery
	}
	if every != s.every && s.tick != nil {
		s.every = every
		s.tick.Reset(every)
	}
}

// send queues m on l without waiting; a full queue drops it.
func (n *Node) send(l *link, m wire.Message) {
	if l == nil || l.shut {
		return
	}
	if !n.push(l, m) {
		n.stats.overflow.Add(1)
	}
}

// shut closes l after what is queued (a Bye, say) is written.
func (n *Node) shut(l *link, bye string) {
	if l.shut {
		return
	}
	if bye != "" {
		n.send(l, wire.Bye{Reason: bye})
	}
	l.shut = true
	n.closeOut(l)
	n.ending(l)
}

// drop removes a neighbour.
func (n *Node) drop(l *link) {
	if !l.up {
		return
	}
	l.up = false
	n.s.nbrs.Remove(l.hello.NodeID)
	delete(n.s.links, l.hello.NodeID)
	n.counted()
}

// counted publishes the number of neighbours, and whether the node has Degree of them.
func (n *Node) counted() {
	n.meter.linked()
	n.pace()
	k := n.s.nbrs.Len()
	n.neighbours.Store(int64(k))
	if ready := k >= n.cfg.Degree; ready != n.s.ready {
		n.s.ready = ready
		if ready {
			n.meter.readyChanged(1)
		} else {
			n.meter.readyChanged(-1)
		}
	}
}

// handle is one event from a link or a dial.
func (n *Node) handle(ev event) {
	s := &n.s
	if ev.l == nil { // a dial failed: forget the address
		delete(s.dialing, ev.dialed)
		s.book.Remove(ev.dialed)
		n.log.Debug("flood: dial failed", "addr", ev.dialed, "err", ev.err)
		return
	}
	l := ev.l
	if ev.msg == nil { // the link closed
		if l.dialAddr.IsValid() && !l.up && l.hello.Version == 0 {
			delete(s.dialing, l.dialAddr)
		}
		if l.up {
			n.log.Debug("flood: neighbour gone", "addr", l.listen, "err", ev.err)
		}
		n.drop(l)
		n.shut(l, "")
		return
	}
	if h, ok := ev.msg.(wire.Hello); ok {
		if l.hello.Version != 0 {
			n.shut(l, byeProtocol) // a second hello
			n.drop(l)
			return
		}
		n.hello(l, h)
		return
	}
	if metered(ev.msg.Type()) {
		defer n.meter.landed(1) // once handled: its answer and copies are queued
	}
	if !l.up {
		n.stats.ignored.Add(1) // a refused link's last frames
		return
	}
	now := time.Now()
	switch m := ev.msg.(type) {
	case wire.Ping:
		if !l.pings.Allow(now) {
			n.stats.pingDropped.Add(1)
			return
		}
		n.send(l, wire.Pong{Nonce: m.Nonce, Addrs: s.book.Sample(s.rng, gossipAddrs, route.Except(l.listen))})
	case wire.Pong:
		// Addresses are learned from the answer to the last Ping, and from one Pong sent
		// unasked (a node that refuses a link sends addresses to try): not from a stream
		// of Pongs that would fill the book with addresses of the sender's choosing.
		if (l.nonce != 0 && m.Nonce == l.nonce) || !l.ponged {
			l.ponged = true
			if m.Nonce == l.nonce {
				l.nonce = 0
			}
			n.learn(m.Addrs)
		} else {
			n.stats.pongIgnored.Add(1)
		}
	case wire.Query:
		n.query(l, m, now)
	case wire.Hit:
		n.hit(l, m, now)
	case wire.Bye:
		n.log.Debug("flood: bye", "addr", l.listen, "reason", m.Reason)
		n.drop(l)
		n.shut(l, "")
	}
}

// learn adds gossiped overlay addresses to the book.
func (n *Node) learn(addrs []netip.AddrPort) {
	for _, a := range addrs {
		if a.IsValid() && a.Port() != 0 && !a.Addr().IsUnspecified() && a != n.tr.Addr() {
			n.s.book.Add(a)
		}
	}
}

// hello decides whether a link becomes a neighbour.
func (n *Node) hello(l *link, h wire.Hello) {
	s := &n.s
	l.hello = h
	if l.dialAddr.IsValid() {
		delete(s.dialing, l.dialAddr)
	}
	l.listen = h.Listen
	if l.listen.IsValid() && l.listen.Addr().IsUnspecified() {
		if ra, err := netip.ParseAddrPort(l.c.RemoteAddr().String()); err == nil {
			l.listen = netip.AddrPortFrom(ra.Addr().Unmap(), l.listen.Port())
		}
	}
	if h.NodeID == n.id {
		s.book.Remove(l.dialAddr)
		n.shut(l, byeSelf)
		return
	}
	if h.Version != wire.Version {
		n.shut(l, byeVersion)
		return
	}
	n.learn([]netip.AddrPort{l.listen})
	if old := s.links[h.NodeID]; old != nil {
		// Two links between the same pair (both dialed at once): both ends keep the one
		// dialed by the node with the smaller ID.
		dialedBy := func(x *link) [16]byte {
			if x.dialAddr.IsValid() {
				return n.id
			}
			return h.NodeID
		}
		keepNew := dialedBy(l) != dialedBy(old) && less(dialedBy(l), dialedBy(old))
		if !keepNew {
			n.shut(l, byeDuplicate)
			return
		}
		n.drop(old)
		n.shut(old, byeDuplicate)
	} else if s.nbrs.Full() {
		// Past 2*Degree: refuse, with addresses to try instead.
		n.send(l, wire.Pong{Addrs: s.book.Sample(s.rng, gossipAddrs, route.Except(l.listen))})
		n.shut(l, byeFull)
		return
	}
	if !s.nbrs.Add(h.NodeID, l.listen) {
		n.shut(l, byeFull)
		return
	}
	l.up = true
	l.bucket = route.NewBucket(n.cfg.QueryRate, int(2*n.cfg.QueryRate))
	l.relay = route.NewBucket(n.cfg.QueryRate*relayShare, int(2*n.cfg.QueryRate*relayShare))
	l.fwd = route.NewBucket(n.cfg.QueryRate*forwardShare, int(2*n.cfg.QueryRate*forwardShare))
	l.pings = route.NewBucket(pingRate, pingBurst)
	l.hits = route.NewBucket(hitRateFactor*n.cfg.QueryRate, int(2*hitRateFactor*n.cfg.QueryRate))
	s.links[h.NodeID] = l
	n.counted()
	n.log.Debug("flood: neighbour", "addr", l.listen, "neighbours", s.nbrs.Len())
	n.ping(l) // ask for addresses at once
	for _, lk := range s.lookups {
		if lk.waiting {
			n.launch(lk, [][16]byte{h.NodeID})
		}
	}
}

// ping sends l a Ping, whose Pong's addresses will be learned.
func (n *Node) ping(l *link) {
	l.nonce = n.s.rng.Uint64() | 1 // never 0: 0 stands for no Ping waiting
	n.send(l, wire.Ping{Nonce: l.nonce})
}

func less(a, b [16]byte) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// query handles a query from neighbour l: rate limit, duplicates, answer, forward.
func (n *Node) query(l *link, q wire.Query, now time.Time) {
	s := &n.s
	if !l.bucket.Allow(now) {
		n.stats.rateDropped.Add(1)
		return
	}
	q.TTL = route.ClampTTL(q.TTL)
	first := !s.seen.Check(q.ID, now)
	if !first && !q.Walk {
		n.stats.dupDropped.Add(1)
		return
	}
	if first {
		n.stats.queriesSeen.Add(1)
		n.meter.reach()
		s.paths.Put(q.ID, l.hello.NodeID, now)
		if port, ok := s.held[q.InfoHash]; ok {
			n.stats.answered.Add(1)
			n.send(l, wire.Hit{ID: q.ID, InfoHash: q.InfoHash, Hops: q.Hops + 1,
				Peers: []netip.AddrPort{netip.AddrPortFrom(n.host, port)}})
		}
	} else {
		n.stats.revisits.Add(1)
	}
	q.Hops++
	if q.Walk {
		// One relay token per lookup, not per walker: a lookup's walkers share its ID, and
		// a search with more walkers than the relay burst must not lose them at the first
		// hop. Each walker frame is still within l's query rate, and goes on to one
		// neighbour only.
		if q.TTL <= 1 || (first && !n.relayed(l, now)) {
			return
		}
		q.TTL--
		to, ok := s.nbrs.Random(s.rng, l.hello.NodeID)
		if !ok {
			to = l.hello.NodeID // a walker at a dead end goes back
		}
		n.forward(s.links[to], q, now)
		return
	}
	targets, ttl := route.Forward(s.nbrs, l.hello.NodeID, q.TTL)
	if len(targets) == 0 || !n.relayed(l, now) {
		return
	}
	q.TTL = ttl
	for _, id := range targets {
		n.forward(s.links[id], q, now)
	}
}

// relayed reports whether a query from neighbour l may be passed on, within l's relay
// rate (see relayShare); one that may not is counted.
func (n *Node) relayed(l *link, now time.Time) bool {
	if l.relay.Allow(now) {
		return true
	}
	n.stats.relayDropped.Add(1)
	return false
}

// forward queues another node's query on l, within l's forwarding rate: QueryRate times
// forwardShare, so that what this node passes on never uses up the receiver's limit for the
// link (the same QueryRate, if it keeps the default) and the node's own lookups still get
// through. A neighbour flooding queries at its full rate thus cannot make the node's
// neighbours drop the node's own.
func (n *Node) forward(l *link, q wire.Query, now time.Time) {
	if l == nil {
		return
	}
	if !l.fwd.Allow(now) {
		n.stats.forwardDropped.Add(1)
		return
	}
	n.send(l, q)
}

// hit handles a hit from neighbour l: ours, or passed back along the reverse path.
func (n *Node) hit(l *link, h wire.Hit, now time.Time) {
	s := &n.s
	if !l.hits.Allow(now) {
		n.stats.hitDropped.Add(1)
		return
	}
	if lk := s.lookups[h.ID]; lk != nil {
		if lk.ih == h.InfoHash {
			n.deliver(lk, h, now)
		}
		return
	}
	prev, ok := s.paths.Get(h.ID, now)
	if !ok || s.links[prev] == nil {
		n.stats.hitsLost.Add(1)
		return
	}
	n.send(s.links[prev], h)
}
