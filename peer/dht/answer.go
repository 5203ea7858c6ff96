package dht

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/anacrolix/torrent/bencode"
)

// This node answers find_node, get_peers and announce_peer itself; the library answers ping
// (and BEP 44's get and put). The library's answers name the wrong nodes: its routing table
// gives the nodes of the target's bucket and then of the buckets farther from us, never those
// of the nearer buckets, which are closer to the target, and not sorted by distance; near the
// end of a lookup, where the target's bucket is nearly empty, that hands out far nodes
// instead of the closest ones, so lookups and announces stop short of the nodes closest to
// the info-hash, and a lookup can miss what an announce stored. Asked for "nodes6" by an
// IPv4 node, it also lists every IPv4 node again as IPv4-mapped IPv6, which a traversal
// takes for other nodes.

// query is a query to answer.
type query struct {
	m    krpc.Msg
	from net.Addr
}

// Bounds of answering.
const (
	// queueLen is how many queries wait to be answered before more are dropped (the querier
	// then times out, as with a node overloaded).
	queueLen = 128
	// reverifyAfter is how long a node that queried us is not pinged again.
	reverifyAfter = 15 * time.Minute
	// maxPings is how many pings of new contacts may be in flight, and maxWaiting how many
	// more contacts may wait for their ping.
	maxPings   = 16
	maxWaiting = 4096
	// maxPinged is how many contacts serve remembers having pinged (for reverifyAfter each);
	// past it, new contacts are not pinged until old ones are forgotten.
	maxPinged = 10000
)

// onQuery is the library's hook for each query received, called with the library's lock held:
// it never blocks. It passes the sender to serve to be pinged, and the queries this node
// answers itself to serve to be answered (dropping what does not fit), keeping them from the
// library.
func (n *Node) onQuery(m *krpc.Msg, source net.Addr) bool {
	if !m.ReadOnly {
		select {
		case n.contacts <- source:
		default:
		}
	}
	switch m.Q {
	case "find_node", "get_peers", "announce_peer":
		select {
		case n.queries <- &query{*m, source}:
		default:
			n.drops.overloaded.Add(1)
		}
		return false
	}
	return true
}

// serve answers the queries onQuery passes on, and pings the nodes that query us, once per
// reverifyAfter each: the library puts a querying node in its routing table, but it is good
// (handed out to others) only once it has answered a query of ours, and the library sends
// none by itself (its TableMaintainer pings such nodes a minute later at best). Without this
// a bare bootstrap node would never tell a joining node about the others. At most maxPings
// pings are in flight; the contacts past them wait their turn (up to maxWaiting of them).
func (n *Node) serve() {
	defer n.wg.Done()
	pinged := pingBook{m: make(map[netip.AddrPort]time.Time)}
	var waiting []net.Addr
	inFlight := 0
	pong := make(chan struct{}, maxPings)
	for {
		for inFlight < maxPings && len(waiting) > 0 {
			a := waiting[0]
			waiting = waiting[1:]
			inFlight++
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				addr := adht.NewAddr(a)
				res := n.s.Query(n.ctx, addr, "ping", adht.QueryInput{})
				if id := res.Reply.SenderID(); res.Err == nil && id != nil {
					n.s.NodeRespondedToPing(addr, id.Int160())
				}
				pong <- struct{}{}
			}()
		}
		var a net.Addr
		select {
		case <-n.ctx.Done():
			return
		case <-pong:
			inFlight--
			continue
		case q := <-n.queries:
			n.answer(q)
			continue
		case a = <-n.contacts:
		}
		if len(waiting) < maxWaiting && pinged.due(addrPortOf(a), time.Now()) {
			waiting = append(waiting, a)
		}
	}
}

// pingBook is when serve last pinged each contact: at most maxPinged of them.
type pingBook struct {
	m      map[netip.AddrPort]time.Time
	pruned time.Time
}

// due says whether ap is to be pinged at now, and if so records that it is.
func (b *pingBook) due(ap netip.AddrPort, now time.Time) bool {
	if at, ok := b.m[ap]; ok && now.Sub(at) < reverifyAfter {
		return false
	}
	if len(b.m) >= maxPinged {
		if pruneDue(&b.pruned, now) {
			for k, at := range b.m {
				if now.Sub(at) >= reverifyAfter {
					delete(b.m, k)
				}
			}
		}
		if len(b.m) >= maxPinged {
			return false
		}
	}
	b.m[ap] = now
	return true
}

// answer replies to a find_node, get_peers or announce_peer query (BEP 5, and BEP 32's
// "want").
func (n *Node) answer(q *query) {
	from := addrPortOf(q.from)
	a := q.m.A
	if a == nil {
		n.drops.badArgs.Add(1)
		n.reply(q, nil, &krpc.Error{Code: krpc.ErrorCodeProtocolError, Msg: "missing arguments dict"})
		return
	}
	r := &krpc.Return{}
	switch q.m.Q {
	case "find_node":
		n.closest(r, a.Target, a.Want, from)
	case "get_peers":
		token := n.tokens.make(from.Addr(), time.Now())
		r.Token = &token
		for _, p := range n.store.GetPeers(peer_store.InfoHash(a.InfoHash)) {
			ip, _ := netip.AddrFromSlice(p.IP)
			if want(a.Want, from, ip.Unmap().Is4()) {
				r.Values = append(r.Values, p)
			}
		}
		if len(r.Values) == 0 {
			n.closest(r, a.InfoHash, a.Want, from)
		}
	case "announce_peer":
		if !n.tokens.valid(a.Token, from.Addr(), time.Now()) {
			n.drops.badToken.Add(1)
			n.reply(q, nil, &krpc.Error{Code: krpc.ErrorCodeProtocolError, Msg: "bad token"})
			return
		}
		port := int(from.Port())
		if !a.ImpliedPort {
			if a.Port == nil || *a.Port <= 0 || *a.Port > 65535 {
				n.drops.badArgs.Add(1)
				n.reply(q, nil, &krpc.Error{Code: krpc.ErrorCodeProtocolError, Msg: "bad port"})
				return
			}
			port = *a.Port
		}
		if !n.store.add(peer_store.InfoHash(a.InfoHash), netip.AddrPortFrom(from.Addr(), uint16(port)), time.Now()) {
			n.drops.storeFull.Add(1)
			n.reply(q, nil, &krpc.Error{Code: krpc.ErrorCodeServerError, Msg: "peer store full"})
			return
		}
	}
	n.reply(q, r, nil)
}

// want says whether a querier at from asked for nodes (or peers) of IPv4 (v4) or IPv6: as its
// "want" says, or else those of its own family.
func want(wants []krpc.Want, from netip.AddrPort, v4 bool) bool {
	if len(wants) == 0 {
		return from.Addr().Is4() == v4
	}
	if v4 {
		return slices.Contains(wants, krpc.WantNodes)
	}
	return slices.Contains(wants, krpc.WantNodes6)
}

// closest puts in r the k good nodes of the routing table closest to target, of the families
// the querier wants, the querier itself left out. (A Manual node, which refreshes nothing by
// itself, counts every node that ever answered it as good.)
func (n *Node) closest(r *krpc.Return, target krpc.ID, wants []krpc.Want, from netip.AddrPort) {
	now := time.Now()
	nodes := n.s.Nodes()
	var v4, v6 []krpc.NodeInfo
	for _, ni := range nodes {
		ip, ok := netip.AddrFromSlice(ni.Addr.IP)
		if !ok {
			continue
		}
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(ni.Addr.Port))
		if ap == from || !n.conn.good(ap, now, n.cfg.Manual) {
			continue
		}
		ni.Addr.FromAddrPort(ap)
		if ap.Addr().Is4() {
			v4 = append(v4, ni)
		} else {
			v6 = append(v6, ni)
		}
	}
	if want(wants, from, true) {
		r.Nodes = nearest(v4, target)
	}
	if want(wants, from, false) {
		r.Nodes6 = nearest(v6, target)
	}
}

// nearest sorts nodes by XOR distance to target and keeps the k first.
func nearest(nodes []krpc.NodeInfo, target krpc.ID) []krpc.NodeInfo {
	slices.SortFunc(nodes, func(a, b krpc.NodeInfo) int {
		for i := range target {
			if x, y := a.ID[i]^target[i], b.ID[i]^target[i]; x != y {
				return int(x) - int(y)
			}
		}
		return 0
	})
	return nodes[:min(k, len(nodes))]
}

// reply sends the answer to q: r, or the error e.
func (n *Node) reply(q *query, r *krpc.Return, e *krpc.Error) {
	m := krpc.Msg{T: q.m.T, Y: krpc.YResponse, R: r, E: e}
	if e != nil {
		m.Y = krpc.YError
	} else {
		r.ID = n.s.ID()
		m.IP.FromUDPAddr(net.UDPAddrFromAddrPort(addrPortOf(q.from)))
	}
	b, err := bencode.Marshal(m)
	if err != nil {
		n.log.Warn("DHT: encoding a reply", "err", err)
		return
	}
	if _, err := n.conn.WriteTo(b, q.from); err != nil && n.ctx.Err() == nil {
		n.log.Debug("DHT: sending a reply", "to", q.from, "err", err)
	}
}

// tokens makes and checks the tokens of get_peers replies that announce_peer must present:
// a hash of the querier's IP and a secret of this node, changed every tokenEvery; a token is
// good for two of those intervals (BEP 5: about ten minutes).
type tokens struct{ secret [20]byte }

const tokenEvery = 5 * time.Minute

func newTokens() tokens {
	var t tokens
	rand.Read(t.secret[:])
	return t
}

func (t *tokens) at(ip netip.Addr, interval int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(interval))
	ip16 := ip.As16()
	h := sha1.New()
	h.Write(ip16[:])
	h.Write(b[:])
	h.Write(t.secret[:])
	return string(h.Sum(nil)[:8])
}

func (t *tokens) make(ip netip.Addr, now time.Time) string {
	return t.at(ip, now.UnixNano()/int64(tokenEvery))
}

func (t *tokens) valid(token string, ip netip.Addr, now time.Time) bool {
	i := now.UnixNano() / int64(tokenEvery)
	return subtle.ConstantTimeCompare([]byte(token), []byte(t.at(ip, i))) == 1 ||
		subtle.ConstantTimeCompare([]byte(token), []byte(t.at(ip, i-1))) == 1
}
