// Package flood is shoal's unstructured discovery: a Gnutella-style overlay of TCP links
// between nodes, searched by flooding (or by random walks), and a peer.Discovery adapter over it.
//
// A Node joins through its bootstrap addresses, learns more from its neighbours (each Hello
// names the sender's overlay address; each Pong carries a few known addresses) and keeps
// between Degree and 2*Degree neighbours: it dials addresses it knows at random while it has
// fewer than Degree, and refuses links past 2*Degree (with a Pong of addresses to try, then
// a Bye). Dead neighbours (closed links, or silence for IdleTimeout) are dropped and replaced.
//
// Announce is local: a node answers for the torrents it holds, and nothing is pushed into the
// network. Lookup sends a Query with a fresh random ID to every neighbour; each node drops
// a query it has seen, answers with a Hit when it holds the torrent, and forwards the query to
// every neighbour but the sender while its TTL lasts. Hits travel back along the query's
// reverse path. With Walkers K > 0 the query is K random walkers instead: each forwarded to
// one random neighbour, the TTL its step budget.
//
// A node is bounded against hostile peers: incoming connections past MaxLinks open links,
// MaxPending handshakes or MaxPendingPerIP handshakes from one IP are closed at accept; a
// handshake lasts at most HandshakeTimeout and its Hello frame at most 64 bytes; a link the
// node has shut ends within HandshakeTimeout; each neighbour's queries, pings and hits are
// rate-limited, and what it sends is passed on, and what others send forwarded to it, at a
// share of QueryRate that leaves room for everyone else's searches. Stats counts what each
// bound turned away.
//
// Trace runs a lookup for measurement (its own TTL and walkers, hops and time to the first
// hit), and a Meter shared by the nodes of an experiment counts what lookups cost
// network-wide and tells when a flood has died out: shoal compare is built on them.
//
// The wire format is peer/flood/wire, the routing state peer/flood/route, the streams
// peer/flood/transport (TCP, or an in-memory network for simulations). One goroutine, the run
// loop, owns a node's state and never waits on the network. A link's frames are written by a
// goroutine that runs while some are queued, and read by one parked on the connection, or,
// on an in-memory connection (a transport.Poller), by one that runs while frames are due: so
// a node at rest costs two goroutines (run loop and accept loop), and one process holds a
// simulated overlay of 100,000 nodes.
package flood

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood/route"
	"github.com/shoalp2p/shoal/peer/flood/transport"
	"github.com/shoalp2p/shoal/peer/flood/wire"
)

// Config is how a Node runs. Zero values take the defaults below.
type Config struct {
	// Transport carries the node's links; the node owns it and closes it. Required.
	Transport transport.Transport
	// Bootstrap lists overlay addresses to join through. Empty: the first node of a network.
	Bootstrap []netip.AddrPort
	// Degree D: the node keeps between D and 2D neighbours. Default 4.
	Degree int
	// TTL is how many hops a query travels (a walker's step budget); capped at route.MaxTTL.
	// Default 5.
	TTL int
	// Walkers 0 floods queries; K > 0 sends K random walkers instead.
	Walkers int
	// BTHost is the IP put in hits with the BitTorrent port; default the transport's IP.
	BTHost netip.Addr
	// Seed seeds the node's random choices (its ID, query IDs, neighbours); 0 picks one at
	// random. Simulations set it to be reproducible.
	Seed uint64
	// QueryRate is how many queries per second a neighbour may send before the rest are
	// dropped (a burst of twice as many is allowed). Default 20. Of a neighbour's queries a
	// quarter of that rate is passed on to the others, and others' queries are forwarded to
	// a neighbour at half of it (each with a burst of twice as many); hits are allowed at ten
	// times it.
	QueryRate float64
	// HandshakeTimeout bounds the Hello exchange (default 5 s); IdleTimeout closes a link
	// silent that long (default 30 s; neighbours are pinged at a third of it); LookupTimeout
	// is how long a Lookup collects hits (default 1 s: the node's search loop waits for
	// a lookup to end before it announces).
	HandshakeTimeout, IdleTimeout, LookupTimeout time.Duration
	// Logger receives the node's log; nil discards it.
	Logger *slog.Logger

	// Meter, when set, is shared by the nodes of one experiment: it counts their lookups'
	// frames network-wide and tells when a flood has died out (see Meter). Nil: not counted.
	Meter *Meter

	// Knobs for simulations of many nodes in one process; a real node keeps the defaults.
	// Memory is how many query IDs it remembers, for dropping duplicates and for the reverse
	// paths of hits (default 65,536 each; lookups run one at a time need a handful). Book is
	// how many overlay addresses it keeps to dial and gossip (default 1,024).
	Memory int
	Book   int

	// Bounds on incoming connections, checked at accept: one past them is closed at once
	// and counted in Stats.Refused. MaxPending is how many may be in the handshake (no
	// Hello read yet) at once (default 64), MaxPendingPerIP how many of those may come from
	// one IP (default 8), and MaxLinks how many links, incoming and dialed, handshaking,
	// neighbours or closing, may be open at once (default 3*Degree + MaxPending: 2*Degree
	// neighbours, Degree dials, the handshakes).
	MaxPending, MaxPendingPerIP, MaxLinks int
}

// Defaults.
const (
	DefaultDegree    = 4
	DefaultTTL       = 5
	DefaultQueryRate = 20
	defaultHandshake = 5 * time.Second
	defaultIdle      = 30 * time.Second
	defaultLookup    = time.Second
	defaultMemory    = 1 << 16 // query IDs remembered, and reverse paths
	defaultBook      = 1024    // overlay addresses known

	// DefaultMaxPending is how many incoming connections may be in the handshake at once,
	// DefaultMaxPendingPerIP how many of them from one IP.
	DefaultMaxPending      = 64
	DefaultMaxPendingPerIP = 8
)

// Bounds on what one link may send.
const (
	// maxHelloFrame caps the first frame of a link, its Hello (at most 50 bytes), so that
	// a connection in the handshake holds no frame buffer of MaxFrame.
	maxHelloFrame = 64
	// pingRate and pingBurst bound the Pings a neighbour may send (each costs a Pong of
	// addresses); past them they are dropped unanswered. An honest node pings every
	// IdleTimeout/3, and every maintainEvery (2 per second) only while it is short of
	// neighbours with nobody left to dial.
	pingRate, pingBurst = 4, 8
	// hitRateFactor: a neighbour may send hits at hitRateFactor times QueryRate (burst
	// twice that): a lookup for a torrent many nodes hold brings many hits back at once.
	hitRateFactor = 10
	// forwardShare: a node forwards others' queries to a neighbour at most at this share of
	// QueryRate (burst twice that), keeping the rest of the neighbour's limit for its own.
	forwardShare = 0.5
	// relayShare: of a neighbour's queries (QueryRate of them answered), a node passes on
	// at most this share of QueryRate (burst twice that), so that one neighbour flooding
	// queries takes at most half of the forwarding rate of each link, network-wide (each
	// node passes a query on once): the other half stays for everyone else's.
	relayShare = 0.25
)

// Sizes and timing of the routing state.
const (
	// maintainEvery is how often a node short of neighbours dials more; one that has Degree
	// of them wakes only to ping them (every IdleTimeout/3), so that 100,000 simulated nodes
	// at rest cost next to nothing.
	maintainEvery = 500 * time.Millisecond
	seenTTL       = 2 * time.Minute
	pathsTTL      = time.Minute
	gossipAddrs   = 8   // addresses per Pong
	outQueue      = 256 // frames waiting for a link's writer; past it they are dropped
	// eventQueue is how many frames the links may hand the run loop before their readers
	// wait for it. Small: a reader waiting is back-pressure, and 100,000 nodes keep one each.
	eventQueue = 16
)

// ErrClosed is returned by a Node's methods after Close.
var ErrClosed = errors.New("flood: node closed")

// Node is one overlay node; it implements peer.Discovery.
type Node struct {
	cfg  Config
	log  *slog.Logger
	tr   transport.Transport
	host netip.Addr // BTHost
	id   [16]byte   // the node's random ID

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex // guards closed, conns and the pending counts, and wg.Add against Close
	closed  bool
	conns   map[net.Conn]struct{} // open links, closed by Close
	pending int                   // incoming links in the handshake
	pendIP  map[netip.Addr]int    // pending by remote IP
	meter   *Meter

	events chan event
	cmds   chan func()

	// Owned by the run loop.
	s state

	neighbours atomic.Int64
	stats      counters
}

// state is what the run loop owns.
type state struct {
	rng      *rand.Rand
	nbrs     *route.Neighbours
	links    map[[16]byte]*link
	book     *route.Book
	seen     *route.Seen
	paths    *route.Paths
	dialing  map[netip.AddrPort]bool
	held     map[[20]byte]uint16 // infohash -> BitTorrent port
	lookups  map[[16]byte]*lookup
	lastPing time.Time
	ready    bool // counted in the Meter's Ready: at least Degree neighbours
	tick     *time.Ticker
	every    time.Duration // tick's period
}

// link is one connection, from accept or dial to close.
type link struct {
	c        net.Conn
	dialAddr netip.AddrPort // valid when this node dialed
	ip       netip.Addr     // remote IP of an incoming link
	pending  bool           // counted in the node's pending handshakes; under Node.mu

	// until, when not 0, is the UnixNano time by which the link must end: the run loop has
	// shut it, and its reader waits for the other side's end at most that long.
	until atomic.Int64

	// The outbox: frames waiting for the link's writer, a goroutine that runs only while
	// there are some (an idle link holds no writer).
	mu      sync.Mutex
	out     []wire.Message
	closing bool // nothing more is queued: the writer closes c once out is written
	writing bool // a writer is running

	// Reading. greeted is the reader's own. A polled link (transport.Poller) has no reader
	// parked on it: a pump goroutine runs while frames are due, and a timer stands for the
	// read deadline.
	greeted       bool // the other side's Hello has been read
	pmu           sync.Mutex
	pumping, more bool // a pump runs; it should look again before it ends
	stopped       bool // reading is over
	timer         *time.Timer

	// Set by the run loop.
	hello  wire.Hello
	listen netip.AddrPort
	up     bool          // registered as a neighbour
	shut   bool          // closing set
	bucket *route.Bucket // the neighbour's queries
	fwd    *route.Bucket // others' queries forwarded to it
	relay  *route.Bucket // its queries passed on to others
	pings  *route.Bucket // its pings
	hits   *route.Bucket // its hits
	nonce  uint64        // of the last Ping sent; its Pong's addresses are learned
	ponged bool          // a Pong was taken: one more, unasked (a refusal's), is not
}

// event is what a link's reader (or a dial) tells the run loop.
type event struct {
	l      *link
	msg    wire.Message // nil: the link closed (err says why)
	err    error
	dialed netip.AddrPort // a failed dial, with l nil
}

var _ peer.Discovery = (*Node)(nil)

// New starts a node on cfg.Transport: its accept loop and its run loop, which joins the
// overlay through cfg.Bootstrap.
func New(cfg Config) (*Node, error) {
	if cfg.Transport == nil {
		return nil, errors.New("flood: no transport")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Degree <= 0 {
		cfg.Degree = DefaultDegree
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	cfg.TTL = int(route.ClampTTL(cfg.TTL))
	if cfg.Walkers < 0 {
		return nil, fmt.Errorf("flood: %d walkers", cfg.Walkers)
	}
	if cfg.QueryRate <= 0 {
		cfg.QueryRate = DefaultQueryRate
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = defaultHandshake
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = defaultIdle
	}
	if cfg.LookupTimeout <= 0 {
		cfg.LookupTimeout = defaultLookup
	}
	if cfg.Memory <= 0 {
		cfg.Memory = defaultMemory
	}
	if cfg.Book <= 0 {
		cfg.Book = defaultBook
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxPendingPerIP <= 0 {
		cfg.MaxPendingPerIP = DefaultMaxPendingPerIP
	}
	if cfg.MaxLinks <= 0 {
		cfg.MaxLinks = 3*cfg.Degree + cfg.MaxPending
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, tr: cfg.Transport, host: cfg.BTHost,
		events: make(chan event, eventQueue), cmds: make(chan func()),
		conns: make(map[net.Conn]struct{}), pendIP: make(map[netip.Addr]int), meter: cfg.Meter,
	}
	if !n.host.IsValid() {
		n.host = n.tr.Addr().Addr()
	}
	n.s = state{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nbrs:    route.NewNeighbours(cfg.Degree),
		links:   make(map[[16]byte]*link),
		book:    route.NewBook(cfg.Book),
		seen:    route.NewSeen(cfg.Memory, seenTTL),
		paths:   route.NewPaths(cfg.Memory, pathsTTL),
		dialing: make(map[netip.AddrPort]bool),
		held:    make(map[[20]byte]uint16),
		lookups: make(map[[16]byte]*lookup),
	}
	randomID(n.s.rng, &n.id)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(2)
	go n.accept()
	go n.run()
	return n, nil
}

func randomID(r *rand.Rand, id *[16]byte) {
	binary.LittleEndian.PutUint64(id[:8], r.Uint64())
	binary.LittleEndian.PutUint64(id[8:], r.Uint64())
}

// Addr is the node's overlay address, to give to others as a bootstrap address.
func (n *Node) Addr() netip.AddrPort { return n.tr.Addr() }

// Neighbours is how many neighbours the node has now.
func (n *Node) Neighbours() int { return int(n.neighbours.Load()) }

// NeighbourAddrs lists the overlay addresses of the node's neighbours.
func (n *Node) NeighbourAddrs(ctx context.Context) ([]netip.AddrPort, error) {
	var addrs []netip.AddrPort
	err := n.do(ctx, func() {
		for _, id := range n.s.nbrs.IDs() {
			a, _ := n.s.nbrs.Addr(id)
			addrs = append(addrs, a)
		}
	})
	return addrs, err
}

// Name is the adapter's name: "flood", for random walks too (Stats says which).
func (n *Node) Name() string { return "flood" }

// Close leaves the overlay: it stops the node's goroutines, closes its links and its
// transport, and waits.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	conns := n.conns
	n.conns = nil
	n.mu.Unlock()
	for c := range conns { // unlocked: closing a polled link calls its pump
		c.Close()
	}
	n.cancel()
	err := n.tr.Close()
	n.wg.Wait()
	return err
}

// track registers a dialed link for Close to close; false (and c closed) once closing.
func (n *Node) track(c net.Conn) bool {
	n.mu.Lock()
	closed := n.closed
	if !closed {
		n.conns[c] = struct{}{}
	}
	n.mu.Unlock()
	if closed {
		c.Close()
	}
	return !closed
}

// admit registers an incoming link, in the handshake, for Close to close, unless the node
// is closing or the link is past a bound (MaxLinks, MaxPending, MaxPendingPerIP): nil then,
// and c is closed (a refusal is counted).
func (n *Node) admit(c net.Conn) *link {
	l := &link{c: c}
	if ra, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		l.ip = ra.Addr().Unmap()
	}
	n.mu.Lock()
	closed := n.closed
	ok := !closed && len(n.conns) < n.cfg.MaxLinks && n.pending < n.cfg.MaxPending &&
		n.pendIP[l.ip] < n.cfg.MaxPendingPerIP
	if ok {
		n.conns[c] = struct{}{}
		n.pending++
		n.pendIP[l.ip]++
		l.pending = true
		n.stats.accepted.Add(1)
	}
	n.mu.Unlock()
	if !ok {
		c.Close()
		if !closed {
			n.stats.refused.Add(1)
		}
		return nil
	}
	return l
}

// greeted takes l out of the pending handshakes, if it is there.
func (n *Node) greeted(l *link) {
	n.mu.Lock()
	if l.pending {
		l.pending = false
		n.pending--
		if n.pendIP[l.ip]--; n.pendIP[l.ip] <= 0 {
			delete(n.pendIP, l.ip)
		}
	}
	n.mu.Unlock()
}

// untrack closes a link Close no longer needs to.
func (n *Node) untrack(l *link) {
	n.greeted(l)
	n.mu.Lock()
	delete(n.conns, l.c) // a no-op on the nil map of a closed node
	n.mu.Unlock()
	l.c.Close()
}

// Open is how many links are open (incoming and dialed, in the handshake, neighbours or
// closing) and how many incoming ones are in the handshake.
func (n *Node) Open() (links, pending int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.conns), n.pending
}

// goFn starts f as one of the node's goroutines, unless the node is closed.
func (n *Node) goFn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// do runs f on the run loop and waits for it to have run.
func (n *Node) do(ctx context.Context, f func()) error {
	done := make(chan struct{})
	select {
	case n.cmds <- func() { f(); close(done) }:
		<-done
		return nil
	case <-n.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// accept serves incoming links until the transport closes.
func (n *Node) accept() {
	defer n.wg.Done()
	for {
		c, err := n.tr.Accept()
		if err != nil {
			if n.ctx.Err() != nil || errors.Is(err, transport.ErrClosed) {
				return
			}
			n.log.Debug("flood: accept", "err", err)
			select { // a failing accept (out of file descriptors) must not spin
			case <-time.After(100 * time.Millisecond):
				continue
			case <-n.ctx.Done():
				return
			}
		}
		l := n.admit(c)
		if l == nil {
			continue
		}
		if !n.goFn(func() { n.serve(l) }) {
			n.untrack(l)
			return
		}
	}
}

// dial connects to addr and serves the link; a failure is reported to the run loop.
func (n *Node) dial(addr netip.AddrPort) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.HandshakeTimeout)
	c, err := n.tr.Dial(ctx, addr)
	cancel()
	if err != nil {
		n.report(event{dialed: addr, err: err})
		return
	}
	if !n.track(c) {
		return
	}
	n.serve(&link{c: c, dialAddr: addr})
}

// report hands ev to the run loop, unless the node is closing.
func (n *Node) report(ev event) bool {
	select {
	case n.events <- ev:
		return true
	case <-n.ctx.Done():
		return false
	}
}

// serve runs one link: it queues this node's Hello, reads the other side's Hello within
// the handshake deadline, then reads frames until the link fails or goes idle. Every frame
// goes to the run loop; a garbled or oversized one closes the link. A connection that is a
// transport.Poller is read by pumps instead (see poll), and serve returns at once.
func (n *Node) serve(l *link) {
	c := l.c
	n.push(l, wire.Hello{Version: wire.Version, NodeID: n.id, Listen: n.tr.Addr(), BTPort: 0})
	if p, ok := c.(transport.Poller); ok {
		n.poll(l, p)
		return
	}
	defer n.untrack(l)
	c.SetReadDeadline(time.Now().Add(n.cfg.HandshakeTimeout))
	for n.readFrame(l) {
		// A link the run loop has shut keeps its deadline (see ending); the check after
		// setting the idle one catches a shut between the two.
		if u := l.until.Load(); u == 0 {
			c.SetReadDeadline(time.Now().Add(n.cfg.IdleTimeout))
		}
		if u := l.until.Load(); u != 0 {
			c.SetReadDeadline(time.Unix(0, u))
		}
	}
}

// ending gives a link the run loop has shut at most HandshakeTimeout more to end: its
// reader reads on to the other side's end (so that nothing in flight is lost), but a peer
// that keeps a refused link open, sending frames the node ignores, is cut off.
func (n *Node) ending(l *link) {
	until := time.Now().Add(n.cfg.HandshakeTimeout)
	l.until.Store(until.UnixNano())
	if l.timer != nil { // a polled link
		l.timer.Reset(n.cfg.HandshakeTimeout)
		return
	}
	l.c.SetReadDeadline(until)
}

// idleFor is how long a polled link's reader waits for its next frame.
func (n *Node) idleFor(l *link) time.Duration {
	if u := l.until.Load(); u != 0 {
		return max(time.Until(time.Unix(0, u)), 0)
	}
	return n.cfg.IdleTimeout
}

// readFrame reads l's next frame and hands it to the run loop; false once the link has
// failed (the run loop is told) or the node is closing.
func (n *Node) readFrame(l *link) bool {
	limit := wire.MaxFrame
	if !l.greeted {
		limit = maxHelloFrame
	}
	m, _, err := wire.ReadFrame(l.c, limit)
	if err == nil && !l.greeted {
		if _, ok := m.(wire.Hello); !ok {
			err = fmt.Errorf("%w: %v before hello", wire.ErrMalformed, m.Type())
		}
		l.greeted = true
		n.greeted(l)
	}
	if err != nil {
		if errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrFrameTooLarge) {
			n.stats.garbled.Add(1)
		} else if !l.greeted && errors.Is(err, os.ErrDeadlineExceeded) {
			n.stats.handshakeTimeouts.Add(1)
		}
		n.report(event{l: l, err: err})
		return false
	}
	n.stats.received[m.Type()].Add(1)
	if !n.report(event{l: l, msg: m}) {
		if metered(m.Type()) {
			n.meter.landed(1)
		}
		return false
	}
	return true
}

// poll reads a polled link: the connection calls pump when it may have become readable,
// and a timer that each frame pushes back stands for the handshake and idle deadlines
// (when it fires, the read deadline is set in the past, so the next read fails).
func (n *Node) poll(l *link, p transport.Poller) {
	l.timer = time.AfterFunc(n.cfg.HandshakeTimeout, func() {
		l.c.SetReadDeadline(time.Unix(1, 0))
		n.pump(l, p)
	})
	p.Notify(func() { n.pump(l, p) })
	n.pump(l, p)
}

// pump starts a goroutine that reads l's frames while there are some, unless one runs
// (it is then told to look again).
func (n *Node) pump(l *link, p transport.Poller) {
	l.pmu.Lock()
	if l.pumping || l.stopped {
		l.more = true
		l.pmu.Unlock()
		return
	}
	l.pumping = true
	l.pmu.Unlock()
	if !n.goFn(func() { n.drain(l, p) }) { // the node is closing
		l.timer.Stop()
	}
}

// drain reads l's frames while a read would not wait; at the link's end it stops reading
// for good.
func (n *Node) drain(l *link, p transport.Poller) {
	for {
		for p.Ready() {
			if !n.readFrame(l) {
				l.pmu.Lock()
				l.stopped = true
				l.pmu.Unlock()
				l.timer.Stop()
				n.untrack(l)
				return
			}
			l.timer.Reset(n.idleFor(l))
			if l.until.Load() != 0 { // shut meanwhile: ending's deadline, not the idle one
				l.timer.Reset(n.idleFor(l))
			}
		}
		l.pmu.Lock()
		if l.more {
			l.more = false
			l.pmu.Unlock()
			continue
		}
		l.pumping = false
		l.pmu.Unlock()
		return
	}
}

// push queues m for l's writer, starting one if none runs; false if the outbox is full or
// closing (m is then dropped). Metered frames go into the Meter's flight.
func (n *Node) push(l *link, m wire.Message) bool {
	l.mu.Lock()
	if l.closing || len(l.out) >= outQueue {
		l.mu.Unlock()
		return false
	}
	if metered(m.Type()) {
		n.meter.queued()
	}
	l.out = append(l.out, m)
	start := !l.writing
	l.writing = true
	l.mu.Unlock()
	if start && !n.goFn(func() { n.write(l) }) {
		n.lose(l) // the node is closing
	}
	return true
}

// closeOut marks l's outbox closing: once what is queued is written, the writer closes the
// link. It starts a writer to do so if none runs.
func (n *Node) closeOut(l *link) {
	l.mu.Lock()
	l.closing = true
	start := !l.writing
	l.writing = true
	l.mu.Unlock()
	if start && !n.goFn(func() { n.write(l) }) {
		n.lose(l)
	}
}

// write writes l's queued frames until the outbox is empty (then it ends, or, if the link is
// closing, closes its writing half) or a write fails (what is left is lost). Closing only
// the writing half lets the link's reader go on to the end of what the other side sent
// (it sees the Bye, or EOF, and closes too), so that no frame in flight is lost unseen. A metered frame is counted
// as written before it is written, so that the Meter has counted it before its receiver can
// take it out of flight; a failed write takes it back.
func (n *Node) write(l *link) {
	var buf []byte
	for {
		l.mu.Lock()
		batch := l.out
		l.out = nil
		if len(batch) == 0 {
			l.writing = false
			closing := l.closing
			l.mu.Unlock()
			if closing {
				closeWrite(l.c)
			}
			return
		}
		l.mu.Unlock()
		for i, m := range batch {
			var err error
			buf, err = wire.AppendFrame(buf[:0], m)
			t := m.Type()
			if err == nil {
				if metered(t) {
					n.meter.written(t, len(buf))
				}
				l.c.SetWriteDeadline(time.Now().Add(n.cfg.IdleTimeout))
				if _, err = l.c.Write(buf); err != nil && metered(t) {
					n.meter.written(t, -len(buf))
				}
			}
			if err != nil {
				n.meter.landed(countMetered(batch[i:]))
				l.c.Close() // the reader sees it and reports the link closed
				n.lose(l)
				return
			}
			n.stats.sent[t].Add(1)
		}
	}
}

// closeWrite closes c's writing half, or all of c if it has none to close alone.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		return
	}
	c.Close()
}

// lose drops what l's outbox holds, for good: the writer stopped, or none can start.
func (n *Node) lose(l *link) {
	l.mu.Lock()
	out := l.out
	l.out = nil
	l.closing = true
	l.writing = true // no writer starts again
	l.mu.Unlock()
	n.meter.landed(countMetered(out))
	l.c.Close()
}

func countMetered(ms []wire.Message) (k int64) {
	for _, m := range ms {
		if metered(m.Type()) {
			k++
		}
	}
	return k
}
