package peer

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/anacrolix/torrent"
)

// PieceFailed: a piece downloaded from peers failed its hash check. Its data is thrown away
// and the piece is fetched again; a peer that alone sent it is banned (see Ban).
type PieceFailed struct {
	Event string `json:"event"`
	Piece int    `json:"piece"`
	// Peers are the IPs that sent blocks of the piece since it was last hashed.
	Peers []string `json:"peers"`
}

// Ban: the node banned a peer's IP for sending data that failed a hash check, either alone
// for a whole piece or as the one whose blocks differed once the piece was fetched again and
// passed. Its connections are closed and the IP is neither dialled nor accepted again while
// the node runs. Bans are per IP and node-wide.
type Ban struct {
	Event  string `json:"event"`
	IP     string `json:"ip"`
	Reason string `json:"reason"`
	// Pieces are the failed pieces this IP sent blocks of, in the order they failed (the
	// first maxSuspectPieces).
	Pieces []int `json:"pieces"`
}

func (PieceFailed) kind() string { return "piece_failed" }
func (Ban) kind() string         { return "ban" }

// BanBadData is the reason of every ban the library makes: data that failed its hash.
const BanBadData = "bad-data"

// Bounds on what a torrent remembers of failed pieces' senders.
const (
	maxSuspectPieces = 64   // failed pieces listed per IP
	maxSuspects      = 4096 // IPs with failed pieces not yet banned
)

// hashWatch tells which pieces from peers failed their hash and which IPs were banned for it.
// The library calls sent for every block it keeps; the rest is owned by Run.
type hashWatch struct {
	mu      sync.Mutex
	senders map[int]map[netip.Addr]struct{} // piece -> IPs that sent blocks of it since it was hashed

	hashing  map[int]bool         // pieces seen hashing or being marked, not yet settled: was their state known
	suspects map[netip.Addr][]int // IP -> failed pieces it sent blocks of, until banned
	banned   map[netip.Addr]bool  // bans already reported (IPv4 unmapped)
	seen     int                  // length of the client's ban list at the last look
}

func newHashWatch() *hashWatch {
	return &hashWatch{
		senders:  map[int]map[netip.Addr]struct{}{},
		hashing:  map[int]bool{},
		suspects: map[netip.Addr][]int{},
		banned:   map[netip.Addr]bool{},
	}
}

// sent records that ip sent a block of piece. The library calls it with its lock held.
func (w *hashWatch) sent(piece int, ip netip.Addr) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.senders[piece]
	if s == nil {
		s = map[netip.Addr]struct{}{}
		w.senders[piece] = s
	}
	s[ip] = struct{}{}
}

// take returns and forgets the senders of piece.
func (w *hashWatch) take(piece int) []netip.Addr {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.senders[piece]
	delete(w.senders, piece)
	ips := make([]netip.Addr, 0, len(s))
	for ip := range s {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	return ips
}

// onChunk is the library's callback for every block kept: it notes who sent which piece.
func (n *Node) onChunk(ev torrent.ReceivedUsefulDataEvent) {
	n.windows.applyWindow(ev.Peer) // share.go: the swarm policy's request windows
	if ev.Peer == nil || ev.Message == nil || ev.Peer.RemoteAddr == nil {
		return
	}
	ap, err := netip.ParseAddrPort(ev.Peer.RemoteAddr.String())
	if err != nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.torrents {
		if t.t == ev.Peer.Torrent() {
			t.watch.sent(int(ev.Message.Index), ap.Addr().Unmap())
		}
	}
}

// onPieceState follows a piece through hashing: a piece that settles not complete after a
// hash, with blocks from peers, failed. Called from Run.
func (t *Torrent) onPieceState(c torrent.PieceStateChange, emit func(Event)) {
	w := t.watch
	if c.Hashing || c.QueuedForHash || c.Marking {
		if _, ok := w.hashing[c.Index]; !ok {
			w.hashing[c.Index] = c.Ok
		}
		return
	}
	known, ok := w.hashing[c.Index]
	if !ok {
		return
	}
	delete(w.hashing, c.Index)
	if !known {
		// The library's first check of a piece whose state was unknown (the download starts
		// while it runs): it hashes what is on disk, perhaps a few blocks, and says nothing
		// of the peers that sent them.
		return
	}
	senders := w.take(c.Index)
	if c.Complete || len(senders) == 0 {
		// Passed, or a check of data already on disk.
		return
	}
	peers := make([]string, len(senders))
	for i, ip := range senders {
		peers[i] = ip.String()
		if w.banned[ip] {
			continue
		}
		if _, ok := w.suspects[ip]; !ok && len(w.suspects) >= maxSuspects {
			continue
		}
		if ps := w.suspects[ip]; len(ps) < maxSuspectPieces && !slices.Contains(ps, c.Index) {
			w.suspects[ip] = append(ps, c.Index)
		}
	}
	t.node.log.Info("piece failed its hash check; fetching it again", "piece", c.Index, "peers", peers)
	emit(PieceFailed{Event: "piece_failed", Piece: c.Index, Peers: peers})
	t.checkBans(emit)
}

// checkBans emits a Ban for each IP the client banned since the last call. Called from Run.
func (t *Torrent) checkBans(emit func(Event)) {
	w := t.watch
	all := t.node.cl.BadPeerIPs()
	if len(all) == w.seen {
		return // bans are never lifted, so none is new
	}
	w.seen = len(all)
	var fresh []netip.Addr
	for _, s := range all {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		if !w.banned[ip] {
			w.banned[ip] = true
			fresh = append(fresh, ip)
		}
	}
	slices.SortFunc(fresh, netip.Addr.Compare)
	for _, ip := range fresh {
		pieces := w.suspects[ip]
		delete(w.suspects, ip)
		if pieces == nil {
			pieces = []int{}
		}
		t.node.log.Info("banned peer: it sent data that failed the hash check", "ip", ip.String(), "pieces", pieces)
		emit(Ban{Event: "ban", IP: ip.String(), Reason: BanBadData, Pieces: pieces})
	}
}
