package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
)

// The traversal's parameters, BEP 5's and the library's: α queries in flight, until the k
// closest nodes that answered have all been queried and no node closer than the farthest of
// them is left to query.
const (
	alpha = 3
	k     = 8
)

// Name is the adapter's name: "dht".
func (n *Node) Name() string { return "dht" }

// walk is one get_peers traversal towards an info-hash. It knows each node's hop depth: the
// nodes of the routing table it started from are at depth 1, and a node first named in a
// reply from a node at depth h is at depth h+1.
type walk struct {
	op     *traversal.Operation
	target int160.T

	mu    sync.Mutex
	depth map[netip.AddrPort]int
	visit func(depth int, values []krpc.NodeAddr) // each reply, one at a time
}

// walkTo starts a get_peers traversal towards ih; visit, when not nil, is called with each
// reply's peers (often none) and the depth of the node that sent it, one reply at a time.
// It fails at once only when the node knows no other node at all.
func (n *Node) walkTo(ih metainfo.Hash, visit func(depth int, values []krpc.NodeAddr)) (*walk, error) {
	starts, err := n.s.TraversalStartingNodes()
	if err != nil {
		return nil, err
	}
	w := &walk{target: int160.FromByteArray(ih), depth: make(map[netip.AddrPort]int, len(starts)), visit: visit}
	for _, s := range starts {
		w.depth[unmap(s.Addr.AddrPort)] = 1
	}
	w.op = traversal.Start(traversal.OperationInput{
		Target:     krpc.ID(ih),
		Alpha:      alpha,
		K:          k,
		DoQuery:    func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult { return w.query(ctx, n.s, addr) },
		NodeFilter: n.s.TraversalNodeFilter,
		// The closest nodes keep the token of their reply, for announce_peer.
		DataFilter: func(data any) bool { _, ok := data.(string); return ok },
	})
	w.op.AddNodes(starts)
	return w, nil
}

// query is the traversal's get_peers to one node.
func (w *walk) query(ctx context.Context, s *adht.Server, addr krpc.NodeAddr) traversal.QueryResult {
	res := s.GetPeers(ctx, adht.NewAddr(addr.UDP()), w.target, false, adht.QueryRateLimiting{})
	tr := res.TraversalQueryResult(addr)
	r := res.Reply.R
	if r == nil {
		return tr
	}
	// One address per node: an IPv4 node named as IPv4-mapped IPv6 is the same node.
	tr.Nodes, tr.Nodes6 = uniqueNodes(tr.Nodes, tr.Nodes6), nil
	w.mu.Lock()
	defer w.mu.Unlock()
	d := max(w.depth[unmap(addr.ToNodeAddrPort().AddrPort)], 1)
	for _, ni := range tr.Nodes {
		ap := unmap(ni.Addr.ToNodeAddrPort().AddrPort)
		if _, known := w.depth[ap]; !known {
			w.depth[ap] = d + 1
		}
	}
	if w.visit != nil {
		w.visit(d, r.Values)
	}
	return tr
}

// uniqueNodes merges node lists, each node once, IPv4 addresses as 4 bytes.
func uniqueNodes(lists ...[]krpc.NodeInfo) []krpc.NodeInfo {
	var out []krpc.NodeInfo
	seen := make(map[netip.AddrPort]struct{})
	for _, nodes := range lists {
		for _, ni := range nodes {
			ap := unmap(ni.Addr.ToNodeAddrPort().AddrPort)
			if _, dup := seen[ap]; dup || !ap.Addr().IsValid() {
				continue
			}
			seen[ap] = struct{}{}
			ni.Addr.FromAddrPort(ap)
			out = append(out, ni)
		}
	}
	return out
}

// wait lets the traversal run until no query is left to send, or ctx ends; either way it
// returns once every query has returned.
func (w *walk) wait(ctx context.Context) {
	select {
	case <-w.op.Stalled():
	case <-ctx.Done():
	}
	w.op.Stop()
	<-w.op.Stopped()
}

// stats is how many nodes the traversal queried and how many answered.
func (w *walk) stats() (queried, answered int) {
	st := w.op.Stats()
	return int(st.NumAddrsTried), int(st.NumResponses)
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// peerSet is the distinct, valid peers a lookup found, this node's own announces left out.
type peerSet struct {
	n    *Node
	seen map[netip.AddrPort]struct{}
}

// add returns the peers of values not seen before.
func (s *peerSet) add(values []krpc.NodeAddr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range values {
		ip, ok := netip.AddrFromSlice(p.IP)
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))
		if _, dup := s.seen[ap]; !ok || dup || p.Port <= 0 || p.Port > 65535 || ip.IsUnspecified() || s.n.isSelf(ap) {
			continue
		}
		s.seen[ap] = struct{}{}
		out = append(out, ap)
	}
	return out
}

func (n *Node) newPeerSet() *peerSet { return &peerSet{n: n, seen: make(map[netip.AddrPort]struct{})} }

// Announce tells the nodes closest to a.InfoHash that this node serves it on TCP port a.Port:
// a get_peers traversal, then announce_peer with that port (never implied_port) to the k
// closest nodes that answered. It returns once that is done, or when ctx ends. A "stopped"
// announcement does nothing: the DHT has no way to withdraw one, entries expire.
func (n *Node) Announce(ctx context.Context, a peer.Announcement) error {
	if a.Event == peer.EventStopped {
		return nil
	}
	if a.Port <= 0 || a.Port > 65535 {
		return fmt.Errorf("dht announce: bad port %d", a.Port)
	}
	ctx, done, err := n.start(ctx)
	if err != nil {
		return err
	}
	defer done()
	n.stats.announces.Add(1)
	n.selfMu.Lock()
	n.self[netip.AddrPortFrom(n.Addr().Addr(), uint16(a.Port))] = struct{}{}
	n.selfMu.Unlock()
	w, err := n.walkTo(a.InfoHash, nil)
	if err != nil {
		return fmt.Errorf("dht announce: %w", err)
	}
	w.wait(ctx)
	queried, answered := w.stats()
	n.stats.contacted.Add(int64(queried))
	if err := n.ctxErr(ctx); err != nil {
		return err
	}
	if answered == 0 {
		return fmt.Errorf("dht announce: %w (tried %d)", errNoNodes, queried)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var accepted int
	var errs []error
	w.op.Closest().Range(func(e k_nearest_nodes.Elem) {
		wg.Go(func() {
			port := a.Port
			res := n.s.Query(ctx, adht.NewAddr(e.Addr.UDP()), "announce_peer", adht.QueryInput{
				MsgArgs: krpc.MsgArgs{InfoHash: krpc.ID(a.InfoHash), Port: &port, Token: e.Data.(string)},
			})
			mu.Lock()
			defer mu.Unlock()
			if err := res.ToError(); err != nil {
				errs = append(errs, err)
			} else {
				accepted++
			}
		})
	})
	wg.Wait()
	if err := n.ctxErr(ctx); err != nil {
		return err
	}
	if accepted == 0 {
		return fmt.Errorf("dht announce: no node took the announce: %w", errors.Join(errs...))
	}
	return nil
}

// Lookup searches for peers of ih with a get_peers traversal. The channel yields each address
// once, as replies arrive (this node's own announced address left out), and is closed when the
// traversal ends, ctx ends or the node closes. It fails at once only when the node knows no
// other node at all.
func (n *Node) Lookup(ctx context.Context, ih metainfo.Hash) (<-chan netip.AddrPort, error) {
	ctx, done, err := n.start(ctx)
	if err != nil {
		return nil, err
	}
	n.stats.lookups.Add(1)
	out := make(chan netip.AddrPort)
	peers := n.newPeerSet()
	w, err := n.walkTo(ih, func(_ int, values []krpc.NodeAddr) {
		for _, ap := range peers.add(values) {
			select {
			case out <- ap:
			case <-ctx.Done():
				return
			}
		}
	})
	if err != nil {
		done()
		return nil, fmt.Errorf("dht lookup: %w", err)
	}
	go func() {
		defer done()
		defer close(out)
		w.wait(ctx)
		queried, _ := w.stats()
		n.stats.contacted.Add(int64(queried))
		n.stats.found.Add(int64(len(peers.seen)))
	}()
	return out, nil
}

// Trace is what one lookup did and found (see Node.Trace).
type Trace struct {
	Queries int   // get_peers queries sent: the distinct nodes queried
	Replies int   // replies received
	Bytes   int64 // of those queries and replies, as the node's Meter counted them
	// Peers are the distinct peers found, in the order they came (this node's own announces
	// left out).
	Peers []netip.AddrPort
	// FirstPeer is the time from the start to the first reply that carried peers, and Hops
	// the hop depth of the node that sent it: 1 for a node of this node's routing table,
	// h+1 for a node first named in a reply from a node at depth h. Both are 0 when no peer
	// was found.
	FirstPeer time.Duration
	Hops      int
	Took      time.Duration // the whole traversal
}

// Trace runs a lookup of ih as Lookup does, to its end, and says what it cost and found. Its
// Bytes come from the node's Meter, so a lookup running at the same time on this node (or on
// another node sharing the Meter) adds its own. It fails at once only when the node knows no
// other node at all.
func (n *Node) Trace(ctx context.Context, ih metainfo.Hash) (Trace, error) {
	ctx, done, err := n.start(ctx)
	if err != nil {
		return Trace{}, err
	}
	defer done()
	n.stats.lookups.Add(1)
	var tr Trace
	peers := n.newPeerSet()
	before := n.meter.Traffic()
	began := time.Now()
	w, err := n.walkTo(ih, func(depth int, values []krpc.NodeAddr) {
		found := peers.add(values)
		if len(found) > 0 && tr.Hops == 0 {
			tr.FirstPeer, tr.Hops = time.Since(began), depth
		}
		tr.Peers = append(tr.Peers, found...)
	})
	if err != nil {
		return Trace{}, fmt.Errorf("dht lookup: %w", err)
	}
	w.wait(ctx)
	tr.Took = time.Since(began)
	tr.Queries, tr.Replies = w.stats()
	t := n.meter.Traffic().Sub(before)
	tr.Bytes = t.QueryBytes + t.RecvBytes
	n.stats.contacted.Add(int64(tr.Queries))
	n.stats.found.Add(int64(len(tr.Peers)))
	return tr, n.ctxErr(ctx)
}

// isSelf says ap is this node, as it announced itself.
func (n *Node) isSelf(ap netip.AddrPort) bool {
	n.selfMu.Lock()
	defer n.selfMu.Unlock()
	_, ok := n.self[ap]
	return ok
}

// Stats is what the node's DHT traffic has cost so far. Sent and Received count every query
// this node sent and every reply (or error reply) it got back, the bootstraps that keep its
// routing table included; queries from other nodes and this node's replies to them are not
// counted (they are the other nodes' cost). NodesContacted adds up, over announces and
// lookups, the distinct nodes each traversal queried; PeersFound adds up the distinct peers
// each lookup yielded.
func (n *Node) Stats() peer.SearchStats {
	return peer.SearchStats{
		Announces:      n.stats.announces.Load(),
		Lookups:        n.stats.lookups.Load(),
		Sent:           n.conn.queries.Load(),
		Received:       n.conn.replies.Load(),
		NodesContacted: n.stats.contacted.Load(),
		PeersFound:     n.stats.found.Load(),
	}
}
