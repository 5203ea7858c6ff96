package dht

import (
	"context"
	"fmt"
	"net/netip"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
)

// Name is the adapter's name: "dht".
func (n *Node) Name() string { return "dht" }

// Announce tells the nodes closest to a.InfoHash that this node serves it on TCP port a.Port:
// a get_peers traversal, then announce_peer with that port to the closest nodes that answered.
// It returns once that is done, or when ctx ends. A "stopped" announcement does nothing: the
// DHT has no way to withdraw one, entries expire.
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
	ann, err := n.s.AnnounceTraversal(a.InfoHash, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: a.Port}))
	if err != nil {
		return fmt.Errorf("dht announce: %w", err)
	}
	defer func() { n.stats.contacted.Add(int64(ann.NumContacted())) }()
	if !drain(ctx, ann) {
		return n.ctxErr(ctx)
	}
	if st := ann.TraversalStats(); st.NumResponses == 0 {
		return fmt.Errorf("dht announce: %w (tried %d)", errNoNodes, st.NumAddrsTried)
	}
	return nil
}

// drain reads an announce's peers until it finishes (true) or ctx ends (false: it is stopped,
// and drained until the library has let go of it).
func drain(ctx context.Context, ann *adht.Announce) bool {
	for {
		select {
		case _, ok := <-ann.Peers:
			if !ok {
				return true
			}
		case <-ctx.Done():
			ann.Close()
			for range ann.Peers {
			}
			return false
		}
	}
}

// Lookup searches for peers of ih with a get_peers traversal. The channel yields each address
// once, as replies arrive (this node's own announced address left out), and is closed when the traversal ends, ctx ends or the node closes.
// It fails at once only when the node knows no other node at all.
func (n *Node) Lookup(ctx context.Context, ih metainfo.Hash) (<-chan netip.AddrPort, error) {
	ctx, done, err := n.start(ctx)
	if err != nil {
		return nil, err
	}
	n.stats.lookups.Add(1)
	ann, err := n.s.AnnounceTraversal(ih)
	if err != nil {
		done()
		return nil, fmt.Errorf("dht lookup: %w", err)
	}
	out := make(chan netip.AddrPort)
	go func() {
		defer done()
		defer close(out)
		seen := make(map[netip.AddrPort]struct{})
		defer func() {
			n.stats.contacted.Add(int64(ann.NumContacted()))
			n.stats.found.Add(int64(len(seen)))
		}()
		for {
			select {
			case pv, ok := <-ann.Peers:
				if !ok {
					return
				}
				for _, p := range pv.Peers {
					ip, ok := netip.AddrFromSlice(p.IP)
					ap := netip.AddrPortFrom(ip.Unmap(), uint16(p.Port))
					if _, dup := seen[ap]; !ok || dup || p.Port <= 0 || p.Port > 65535 || ip.IsUnspecified() || n.isSelf(ap) {
						continue
					}
					seen[ap] = struct{}{}
					select {
					case out <- ap:
					case <-ctx.Done():
						drain(ctx, ann)
						return
					}
				}
			case <-ctx.Done():
				drain(ctx, ann)
				return
			}
		}
	}()
	return out, nil
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
