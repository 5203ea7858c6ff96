// Package dht is shoal's structured discovery: a peer.Discovery adapter over the BitTorrent
// mainline DHT (BEP 5), run by github.com/anacrolix/dht/v2 on a UDP socket of its own (or on
// any net.PacketConn: an in-memory network for simulations).
//
// A Node is one DHT node. It joins as Kademlia does, through its bootstrap nodes (or the
// routing table it saved in its StateDir on a previous run): a lookup of its own id, then of
// an id in each bucket farther than its closest neighbour. It announces a torrent with an
// explicit BitTorrent TCP port (announce_peer with port, never implied_port: the DHT's UDP
// port is not the client's TCP port), and looks up peers with a get_peers traversal; Trace
// is a lookup that also says what it cost and how many hops it took. It is also what
// `shoal dht` runs on its own: a bare node, a bootstrap point for a private swarm.
//
// Unlike the library's defaults, each Node has its own send limiter (the library's default
// is one limiter shared by every server in the process) and its own peer store keyed by
// ip:port (the library's in-memory store keys by IP alone and never returns a peer), and it
// answers find_node, get_peers and announce_peer itself (see answer.go: the library hands
// out the wrong nodes). A Meter counts get_peers traffic, a node's or a whole network's.
// A node's socket drops what the node must not read (oversize, malformed or unknown
// messages, replies to nothing it asked, queries over a source IP's rate), every table a
// peer can fill is bounded, and Dropped counts what was refused (see guard.go and store.go).
// Only this package imports the library.
package dht

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	"github.com/anacrolix/dht/v2/types"
	"golang.org/x/time/rate"

	"github.com/shoalp2p/shoal/peer"
)

// Config is how a Node runs.
type Config struct {
	// Listen is the UDP address, HOST:PORT. An empty host listens on every interface; port 0
	// picks a free port.
	Listen string
	// Bootstrap lists the nodes to join through, HOST:PORT each. nil means the public
	// routers (adht.GlobalBootstrapAddrs); an empty, non-nil list means none: this node is
	// the first of its network.
	Bootstrap []string
	// StateDir, when set, is where the routing table is saved (on Close, and every minute)
	// and loaded from on start, so that a restarted node rejoins without its bootstrap nodes.
	StateDir string
	// Logger receives the node's log, the library's warnings and errors included; nil
	// discards it.
	Logger *slog.Logger

	// For simulations and experiments:

	// Conn, when set, is the node's socket (a simnet.Conn of an in-memory network, say): the
	// node serves on it instead of listening, and Listen must be empty. Its addresses must be
	// *net.UDPAddr. Closing the node closes it.
	Conn net.PacketConn
	// ID is the node's id; zero picks a random one.
	ID [20]byte
	// Manual leaves joining to the caller, for a network that does not change: the node
	// neither bootstraps by itself (call Bootstrap) nor refreshes its table every 15 minutes,
	// nor saves it every minute (it still does on Close), and it hands out every node that
	// ever answered it, not only those that did in the last 15 minutes (BEP 5's good nodes:
	// nothing would refresh them). It still pings the nodes that query it, so that they can
	// be handed out.
	Manual bool
	// Meter, when set, counts the node's get_peers traffic together with that of every node
	// given the same Meter; nil gives the node a Meter of its own.
	Meter *Meter
	// QueryTimeout is how long a query waits for its reply (the library sends each query
	// once, so a dead node costs this much); 0 means 400 ms.
	QueryTimeout time.Duration
}

// Timing.
const (
	// defaultTimeout is how long a query waits for its reply (Config.QueryTimeout). The
	// library sends each query once, so a dead node costs this much; its default is 2 s.
	defaultTimeout = 400 * time.Millisecond
	// saveEvery is how often the routing table is written to the StateDir.
	saveEvery = time.Minute
	// refreshEvery is how often the node bootstraps again, to keep its table fresh.
	refreshEvery = 15 * time.Minute
	// retryFirst and retryMax bound the wait between bootstraps while no node answers.
	retryFirst = 5 * time.Second
	retryMax   = time.Minute
)

// nodesFile is the routing table's file name in the StateDir.
const nodesFile = "dht-nodes"

// ErrClosed is returned by a Node's methods after Close.
var ErrClosed = errors.New("dht: node closed")

// errNoNodes: nothing answered a bootstrap.
var errNoNodes = errors.New("no DHT node answered")

// Node is one DHT node; it implements peer.Discovery.
type Node struct {
	cfg    Config
	log    *slog.Logger
	conn   *countingConn
	meter  *Meter
	want   []krpc.Want // the node lists our queries ask for: our socket's family only
	s      *adht.Server
	store  *peerStore
	saved  []krpc.NodeInfo // the table loaded from the StateDir
	public bool            // bootstrapping from the public routers

	contacts chan net.Addr // nodes that queried us, to ping (see serve)
	queries  chan *query   // find_node, get_peers and announce_peer queries, to answer (see serve)
	tokens   tokens        // for announce_peer

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	boot   chan struct{} // one bootstrap at a time
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	saveMu sync.Mutex

	selfMu sync.Mutex
	self   map[netip.AddrPort]struct{} // what this node announced: lookups skip it

	warned atomic.Bool // "no bootstrap node reachable" said once
	drops  drops       // what the node refused (Dropped)
	stats  struct {
		announces, lookups, contacted, found atomic.Int64
	}
}

var _ peer.Discovery = (*Node)(nil)

// New opens the node's UDP socket and starts serving; it joins the network in the background
// (call Bootstrap to wait for that).
func New(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Meter == nil {
		cfg.Meter = NewMeter()
	}
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = defaultTimeout
	}
	if cfg.QueryTimeout < 0 {
		return nil, fmt.Errorf("dht: query timeout %v is negative", cfg.QueryTimeout)
	}
	for _, b := range cfg.Bootstrap {
		if err := CheckBootstrap(b); err != nil {
			return nil, fmt.Errorf("dht bootstrap node %w", err)
		}
	}
	pc := cfg.Conn
	if pc == nil {
		var err error
		if pc, err = listen(cfg.Listen); err != nil {
			return nil, err
		}
	} else if cfg.Listen != "" {
		return nil, errors.New("dht: both a listen address and a socket given")
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, meter: cfg.Meter, want: wantFor(pc),
		store: newPeerStore(), public: cfg.Bootstrap == nil, boot: make(chan struct{}, 1),
		contacts: make(chan net.Addr, 256), queries: make(chan *query, queueLen),
		self: make(map[netip.AddrPort]struct{}), tokens: newTokens(),
	}
	n.conn = newCountingConn(pc, cfg.Meter, cfg.Manual, &n.drops)
	if cfg.StateDir != "" {
		var err error
		n.saved, err = readNodes(filepath.Join(cfg.StateDir, nodesFile))
		if err != nil {
			n.log.Warn("DHT: ignoring the saved routing table", "err", err)
		}
	}
	sc := adht.NewDefaultServerConfig()
	sc.Conn = n.conn
	sc.NodeId = cfg.ID
	sc.DefaultWant = n.want
	sc.NoSecurity = true                          // node ids are not tied to IPs: loopback swarms, NATs
	sc.SendLimiter = rate.NewLimiter(rate.Inf, 0) // never the process-wide adht.DefaultSendLimiter
	sc.QueryResendDelay = func() time.Duration { return cfg.QueryTimeout }
	sc.StartingNodes = n.startingNodes
	sc.Logger = libLogger(n.log)
	sc.OnQuery = n.onQuery // find_node, get_peers and announce_peer are answered by serve
	s, err := adht.NewServer(sc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("dht: %w", err)
	}
	n.s = s
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.wg.Add(1)
	go n.serve()
	if !cfg.Manual {
		n.wg.Add(1)
		go n.maintain()
	}
	return n, nil
}

// wantFor is what a node on pc asks for in its queries (BEP 32): nodes of its own address
// family. (Asked for both, a node of the library answers an IPv4 querier with every node twice:
// in "nodes", and again in "nodes6" as IPv4-mapped IPv6 addresses, which a traversal then
// takes for other nodes, querying and announcing to each node twice.)
func wantFor(pc net.PacketConn) []krpc.Want {
	if addrPortOf(pc.LocalAddr()).Addr().Is6() {
		return []krpc.Want{krpc.WantNodes6}
	}
	return []krpc.Want{krpc.WantNodes}
}

// listen opens the node's UDP socket.
func listen(addr string) (net.PacketConn, error) {
	host, port, err := peer.SplitListen(addr)
	if err != nil {
		return nil, fmt.Errorf("dht: %w", err)
	}
	network := "udp4"
	if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
		network = "udp6"
	}
	pc, err := net.ListenPacket(network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("dht: listen on %s: %w", addr, err)
	}
	return pc, nil
}

// Addr is the node's UDP address, to give to others as a bootstrap node: the listen IP
// (127.0.0.1 when listening on every interface) and the port actually bound.
func (n *Node) Addr() netip.AddrPort {
	ap := n.conn.local
	ip := ap.Addr()
	if ip.IsUnspecified() {
		if ip.Is6() {
			ip = netip.IPv6Loopback()
		} else {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	}
	return netip.AddrPortFrom(ip, ap.Port())
}

// NumNodes is the number of nodes in the routing table.
func (n *Node) NumNodes() int { return n.s.NumNodes() }

// Meter is the Meter that counts the node's get_peers traffic (Config.Meter, or the node's
// own).
func (n *Node) Meter() *Meter { return n.meter }

// Bootstrap joins the network as Kademlia does: a find_node traversal towards the node's own
// id, which fills the routing table with its neighbours and puts the node in theirs; then a
// find_node traversal towards a random id in each bucket farther than the closest neighbour
// that is not full yet (all at once), which fills the rest of the table and puts the node in
// the tables of other parts of the network. It starts from the table, or, when that is
// empty, from the bootstrap nodes and the saved table. It returns an error when nothing
// answered (a node with no bootstrap nodes and an empty table has nothing to do, and returns
// nil). Concurrent calls run one after the other.
func (n *Node) Bootstrap(ctx context.Context) error {
	ctx, done, err := n.start(ctx)
	if err != nil {
		return err
	}
	defer done()
	select {
	case n.boot <- struct{}{}:
		defer func() { <-n.boot }()
	case <-ctx.Done():
		return n.ctxErr(ctx)
	}
	starts, err := n.s.TraversalStartingNodes()
	if err != nil {
		if !n.public && len(n.cfg.Bootstrap) == 0 && len(n.saved) == 0 {
			return nil // the first node of a network
		}
		n.unreachable(err)
		return fmt.Errorf("dht bootstrap: %w", err)
	}
	own := n.s.ID()
	tried, answered := n.findNode(ctx, own, 16, starts, nil)
	if err := n.ctxErr(ctx); err != nil {
		return err
	}
	if answered == 0 {
		n.unreachable(errNoNodes)
		return fmt.Errorf("dht bootstrap: %w (tried %d)", errNoNodes, tried)
	}
	n.refresh(ctx)
	if err := n.ctxErr(ctx); err != nil {
		return err
	}
	if n.warned.Load() {
		n.log.Debug("DHT: joined", "nodes", n.s.NumNodes())
	}
	return nil
}

// findNode runs a find_node traversal towards target from starts until no query is left to
// send, ctx ends or enough (when not nil), told of each node that answers, says so; it says
// how many nodes it queried and how many answered. Every node that answers enters the
// routing table if its bucket has room.
func (n *Node) findNode(ctx context.Context, target krpc.ID, k int, starts []types.AddrMaybeId, enough func(krpc.ID) bool) (tried, answered int) {
	stop := make(chan struct{})
	var once sync.Once
	op := traversal.Start(traversal.OperationInput{
		Target: target,
		Alpha:  alpha,
		K:      k,
		DoQuery: func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			tr := n.s.Query(ctx, adht.NewAddr(addr.UDP()), "find_node", adht.QueryInput{
				MsgArgs: krpc.MsgArgs{Target: target, Want: n.want},
			}).TraversalQueryResult(addr)
			tr.Nodes, tr.Nodes6 = uniqueNodes(tr.Nodes, tr.Nodes6), nil
			if tr.ResponseFrom != nil && enough != nil && enough(tr.ResponseFrom.ID) {
				once.Do(func() { close(stop) })
			}
			return tr
		},
		NodeFilter: n.s.TraversalNodeFilter,
	})
	op.AddNodes(starts)
	select {
	case <-op.Stalled():
	case <-stop:
	case <-ctx.Done():
	}
	op.Stop()
	<-op.Stopped()
	st := op.Stats()
	return int(atomic.LoadUint32(&st.NumAddrsTried)), int(atomic.LoadUint32(&st.NumResponses))
}

// refresh fills the buckets farther than the closest neighbour that hold fewer than k nodes:
// a find_node traversal towards a random id in each, all at once, each until as many nodes
// of its bucket have answered as the bucket has room for.
func (n *Node) refresh(ctx context.Context) {
	own := n.s.ID()
	var count [160]int // nodes by bucket: the bits their id shares with ours
	deepest := -1
	for _, ni := range n.s.Nodes() {
		b := sharedBits(own, ni.ID)
		count[b]++
		deepest = max(deepest, b)
	}
	starts, err := n.s.TraversalStartingNodes()
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	for b := range deepest {
		if count[b] >= k {
			continue
		}
		var mu sync.Mutex
		answered := make(map[krpc.ID]bool)
		enough := func(id krpc.ID) bool {
			mu.Lock()
			defer mu.Unlock()
			if sharedBits(own, id) == b {
				answered[id] = true
			}
			return count[b]+len(answered) >= k
		}
		wg.Go(func() { n.findNode(ctx, idInBucket(own, b), k, starts, enough) })
	}
	wg.Wait()
}

// sharedBits is how many leading bits a and b have in common (at most 159: a node's own id
// is never in its table).
func sharedBits(a, b krpc.ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 159
}

// idInBucket is a random id that shares exactly b leading bits with own.
func idInBucket(own krpc.ID, b int) krpc.ID {
	var id krpc.ID
	for i := range id {
		id[i] = byte(rand.Uint32())
	}
	for i := range b {
		mask := byte(0x80) >> (i % 8)
		id[i/8] = id[i/8]&^mask | own[i/8]&mask
	}
	mask := byte(0x80) >> (b % 8)
	id[b/8] = id[b/8]&^mask | ^own[b/8]&mask
	return id
}

// unreachable says, once per node, that nothing answered.
func (n *Node) unreachable(err error) {
	if n.warned.Swap(true) {
		return
	}
	boot := "the public routers"
	if !n.public {
		boot = fmt.Sprint(n.cfg.Bootstrap)
	}
	n.log.Warn("DHT: no bootstrap node reachable; searches find nothing until one answers (retrying)",
		"bootstrap", boot, "err", err)
}

// start registers an operation that Close waits for, and merges ctx with the node's life.
func (n *Node) start(ctx context.Context) (context.Context, func(), error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, nil, ErrClosed
	}
	n.wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() { stop(); cancel(); n.wg.Done() }, nil
}

// ctxErr is ErrClosed when the node closed, else ctx's error.
func (n *Node) ctxErr(ctx context.Context) error {
	if n.ctx.Err() != nil {
		return ErrClosed
	}
	return ctx.Err()
}

// maintain bootstraps at once, again (backing off) while nothing answers or the table is
// empty, and every refreshEvery; it saves the routing table every saveEvery.
func (n *Node) maintain() {
	defer n.wg.Done()
	retry := retryFirst
	save := time.NewTicker(saveEvery)
	defer save.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-save.C:
			if err := n.saveTable(); err != nil {
				n.log.Warn("DHT: saving the routing table", "err", err)
			}
			continue
		case <-timer.C:
		}
		err := n.Bootstrap(n.ctx)
		if errors.Is(err, ErrClosed) {
			return
		}
		wait := refreshEvery
		if err != nil || n.s.NumNodes() == 0 {
			// Nothing answered, or this is the first node of its network and nobody has
			// joined yet.
			wait, retry = retry, min(2*retry, retryMax)
		} else {
			retry = retryFirst
		}
		timer.Reset(wait)
	}
}

// startingNodes is where a traversal starts when the routing table is empty: the bootstrap
// nodes and the saved table.
func (n *Node) startingNodes() ([]adht.Addr, error) {
	var addrs []adht.Addr
	var err error
	if n.public {
		addrs, err = adht.GlobalBootstrapAddrs("udp")
	} else {
		addrs, err = resolve(n.ctx, n.cfg.Bootstrap)
	}
	for _, ni := range n.saved {
		addrs = append(addrs, adht.NewAddr(ni.Addr.UDP()))
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if err == nil {
		err = errors.New("no bootstrap nodes")
	}
	return nil, err
}

// resolve turns HOST:PORT strings into addresses; names are looked up in DNS.
func resolve(ctx context.Context, hostPorts []string) ([]adht.Addr, error) {
	var addrs []adht.Addr
	var errs []error
	for _, hp := range hostPorts {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p, _ := strconv.Atoi(port)
		if ip, err := netip.ParseAddr(host); err == nil {
			addrs = append(addrs, adht.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(p)))))
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupNetIP(lctx, "ip", host)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ip := range ips {
			addrs = append(addrs, adht.NewAddr(net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(p)))))
		}
	}
	return addrs, errors.Join(errs...)
}

// CheckBootstrap checks a bootstrap node's address: HOST:PORT (HOST an IP or a name) with a
// port 1..65535.
func CheckBootstrap(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q: want HOST:PORT, like 127.0.0.1:6881", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q: port must be 1..65535", s)
	}
	return nil
}

// Close stops every search, saves the routing table, closes the socket and waits for the
// node's goroutines.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	n.cancel()
	n.wg.Wait()
	err := n.saveTable()
	n.s.Close()
	n.conn.shutdown()
	return err
}

// saveTable writes the routing table to the StateDir. An empty table does not replace a saved
// one: a node that ran offline keeps what it knew.
func (n *Node) saveTable() error {
	if n.cfg.StateDir == "" {
		return nil
	}
	n.saveMu.Lock()
	defer n.saveMu.Unlock()
	nodes := n.s.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	b, err := krpc.CompactIPv6NodeInfo(nodes).MarshalBinary()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(n.cfg.StateDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(n.cfg.StateDir, nodesFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readNodes loads a saved routing table; a missing file is an empty table.
func readNodes(path string) ([]krpc.NodeInfo, error) {
	ns, err := adht.ReadNodesFromFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := ns[:0]
	for _, ni := range ns {
		if ip4 := ni.Addr.IP.To4(); ip4 != nil {
			ni.Addr.IP = ip4
		}
		if ni.Addr.Port > 0 {
			out = append(out, ni)
		}
	}
	return out, nil
}
