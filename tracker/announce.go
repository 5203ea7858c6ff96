package tracker

import (
	"encoding/binary"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// announceRequest is a parsed, valid announce.
type announceRequest struct {
	infoHash                   metainfo.Hash
	peerID                     string
	port                       uint16
	uploaded, downloaded, left int64 // left is -1 when not given
	event                      string
	numWant                    int
	compact, noPeerID          bool
}

// announceResponse is the bencoded answer to an announce.
type announceResponse struct {
	Interval    int64 `bencode:"interval"`
	MinInterval int64 `bencode:"min interval"`
	Complete    int   `bencode:"complete"`
	Incomplete  int   `bencode:"incomplete"`
	// Peers is a string of compact IPv4 peers, or a []peerDict.
	Peers  any    `bencode:"peers"`
	Peers6 string `bencode:"peers6,omitempty"`
}

// peerDict is a peer in a non-compact answer (BEP 3).
type peerDict struct {
	ID   string `bencode:"peer id,omitempty"`
	IP   string `bencode:"ip"`
	Port int    `bencode:"port"`
}

// failureResponse is the answer to a request the tracker refuses.
type failureResponse struct {
	Reason string `bencode:"failure reason"`
}

func (s *Server) serveAnnounce(w http.ResponseWriter, r *http.Request) {
	q, reason := query(r)
	if reason != "" {
		s.fail(w, r, reason)
		return
	}
	req, reason := parseAnnounce(q)
	if reason != "" {
		s.fail(w, r, reason)
		return
	}
	if !s.allowed(req.infoHash) {
		s.fail(w, r, reasonNotAllowed)
		return
	}
	from, ok := remoteIP(r)
	if !ok {
		s.fail(w, r, "cannot tell which address the request came from")
		return
	}
	resp, reason := s.announce(&req, netip.AddrPortFrom(from, req.port), time.Now())
	if reason != "" {
		s.fail(w, r, reason)
		return
	}
	s.announces.Add(1)
	writeBencode(w, resp)
}

// parseAnnounce checks an announce's parameters. It returns a failure reason for the first
// one that is wrong.
func parseAnnounce(q url.Values) (req announceRequest, reason string) {
	get := func(key string) (string, bool) {
		v, ok := q[key]
		if !ok || len(v) == 0 {
			return "", false
		}
		if len(v) > 1 {
			reason = key + " given more than once"
		}
		return v[0], true
	}
	ih, ok := get("info_hash")
	switch {
	case !ok:
		return req, "missing info_hash"
	case len(ih) != 20:
		return req, "invalid info_hash: want 20 bytes, got " + strconv.Itoa(len(ih))
	}
	copy(req.infoHash[:], ih)
	id, ok := get("peer_id")
	switch {
	case !ok:
		return req, "missing peer_id"
	case len(id) != 20:
		return req, "invalid peer_id: want 20 bytes, got " + strconv.Itoa(len(id))
	}
	req.peerID = id
	ps, ok := get("port")
	if !ok {
		return req, "missing port"
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return req, "invalid port: want 1 to 65535"
	}
	req.port = uint16(port)
	for _, c := range []struct {
		key string
		to  *int64
		def int64
	}{{"uploaded", &req.uploaded, 0}, {"downloaded", &req.downloaded, 0}, {"left", &req.left, -1}} {
		v, ok := get(c.key)
		if !ok {
			*c.to = c.def
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return req, "invalid " + c.key + ": want a byte count, 0 or more"
		}
		*c.to = n
	}
	req.event, _ = get("event")
	switch req.event {
	case "", "started", "completed", "stopped", "paused":
	default:
		return req, "invalid event: want started, completed, stopped or none"
	}
	req.numWant = DefaultNumWant
	if v, ok := get("numwant"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			return req, "invalid numwant: want a number of peers"
		case n > MaxNumWant:
			req.numWant = MaxNumWant
		case n >= 0:
			req.numWant = int(n)
		}
	}
	req.compact = true
	if v, ok := get("compact"); ok {
		switch v {
		case "1":
		case "0":
			req.compact = false
		default:
			return req, "invalid compact: want 0 or 1"
		}
	}
	req.noPeerID = q.Get("no_peer_id") == "1"
	return req, reason // reason is set if a key came twice
}

// remoteIP is the address the request came from.
func remoteIP(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap().WithZone(""), true
}

// announce records the peer at addr and picks peers for it. It returns a failure reason
// when the table has no room.
func (s *Server) announce(req *announceRequest, addr netip.AddrPort, now time.Time) (announceResponse, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.torrents[req.infoHash]
	if req.event == "stopped" {
		if t != nil {
			t.expire(now)
			if p := t.byAddr[addr]; p != nil {
				t.remove(p)
			}
		}
		return s.responseLocked(t, req, addr, nil), ""
	}
	if t == nil {
		if len(s.torrents) >= s.cfg.MaxTorrents {
			s.sweepLocked(now, true)
		}
		if len(s.torrents) >= s.cfg.MaxTorrents {
			return announceResponse{}, "tracker is full: it tracks " + strconv.Itoa(s.cfg.MaxTorrents) + " torrents already"
		}
		t = newSwarm()
		s.torrents[req.infoHash] = t
	}
	t.expire(now)
	t.lastSeen = now
	seed := req.left == 0
	p := t.byAddr[addr]
	if p == nil {
		if len(t.list) >= s.cfg.MaxPeers {
			return announceResponse{}, "torrent is full: the tracker lists " + strconv.Itoa(s.cfg.MaxPeers) + " peers for it already"
		}
		p = &peerEntry{addr: addr, id: req.peerID, seed: seed, expires: now.Add(s.ttl)}
		t.add(p)
		if req.event == "completed" {
			t.completed++
		}
	} else {
		if req.event == "completed" && !p.seed {
			t.completed++
		}
		p.id = req.peerID
		t.setSeed(p, seed)
		p.expires = now.Add(s.ttl) // later than before: nextExpiry stays a lower bound
	}
	is4 := addr.Addr().Is4()
	peers := t.pick(req.numWant, func(o *peerEntry) bool {
		return o != p && o.id != p.id && o.addr.Addr().Is4() == is4 && !(seed && o.seed)
	})
	return s.responseLocked(t, req, addr, peers), ""
}

// responseLocked encodes the answer for a peer at addr. t may be nil. s.mu must be held.
func (s *Server) responseLocked(t *swarm, req *announceRequest, addr netip.AddrPort, peers []*peerEntry) announceResponse {
	resp := announceResponse{
		Interval:    int64(s.cfg.Interval / time.Second),
		MinInterval: int64(s.cfg.MinInterval / time.Second),
	}
	if t != nil {
		resp.Complete, resp.Incomplete = t.seeders, t.leechers()
	}
	if !req.compact {
		list := make([]peerDict, 0, len(peers))
		for _, p := range peers {
			d := peerDict{IP: p.addr.Addr().String(), Port: int(p.addr.Port())}
			if !req.noPeerID {
				d.ID = p.id
			}
			list = append(list, d)
		}
		resp.Peers = list
		return resp
	}
	if addr.Addr().Is4() {
		b := make([]byte, 0, 6*len(peers))
		for _, p := range peers {
			a := p.addr.Addr().As4()
			b = binary.BigEndian.AppendUint16(append(b, a[:]...), p.addr.Port())
		}
		resp.Peers = string(b)
		return resp
	}
	b := make([]byte, 0, 18*len(peers))
	for _, p := range peers {
		a := p.addr.Addr().As16()
		b = binary.BigEndian.AppendUint16(append(b, a[:]...), p.addr.Port())
	}
	resp.Peers, resp.Peers6 = "", string(b)
	return resp
}

// fail answers a refused request: status 200 and a bencoded failure reason, which is what
// clients expect.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, reason string) {
	s.failures.Add(1)
	s.log.Debug("tracker refused a request", "path", r.URL.Path, "from", r.RemoteAddr, "reason", reason)
	writeBencode(w, failureResponse{Reason: reason})
}

func writeBencode(w http.ResponseWriter, v any) {
	b, err := bencode.Marshal(v)
	if err != nil { // only our own types are encoded: a bug
		b, _ = bencode.Marshal(failureResponse{Reason: "internal error: " + err.Error()})
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}
