package dht

import (
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

// Limits of the peer store: what this node remembers for others.
const (
	// peerTTL is how long an announce is kept; peers announce again well before (BEP 5 clients
	// every 15 to 30 minutes).
	peerTTL = 30 * time.Minute
	// maxPeersPerHash and maxHashes bound the memory an announcer can make us spend.
	maxPeersPerHash = 1000
	maxHashes       = 10000
	// maxValues is how many peers one get_peers reply carries (6 bytes each, IPv4).
	maxValues = 100
)

// peerStore keeps the peers announced to this node, keyed by ip:port. (The library's
// InMemory keys by IP alone and then fails to decode its own keys: it never returns a peer.)
type peerStore struct {
	mu sync.Mutex
	m  map[peer_store.InfoHash]map[netip.AddrPort]time.Time
}

var _ peer_store.Interface = (*peerStore)(nil)

func newPeerStore() *peerStore {
	return &peerStore{m: make(map[peer_store.InfoHash]map[netip.AddrPort]time.Time)}
}

// AddPeer records an announce: answer calls it for each valid announce_peer.
func (s *peerStore) AddPeer(ih peer_store.InfoHash, na krpc.NodeAddr) {
	ip, ok := netip.AddrFromSlice(na.IP)
	if !ok || na.Port <= 0 || na.Port > 65535 {
		return
	}
	ap := netip.AddrPortFrom(ip.Unmap(), uint16(na.Port))
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	peers := s.m[ih]
	if peers == nil {
		if len(s.m) >= maxHashes {
			s.expire(now)
			if len(s.m) >= maxHashes {
				return
			}
		}
		peers = make(map[netip.AddrPort]time.Time)
		s.m[ih] = peers
	}
	if _, ok := peers[ap]; !ok && len(peers) >= maxPeersPerHash {
		expirePeers(peers, now)
		if len(peers) >= maxPeersPerHash {
			return
		}
	}
	peers[ap] = now
}

// GetPeers lists up to maxValues live peers of ih (a random choice, when there are more).
func (s *peerStore) GetPeers(ih peer_store.InfoHash) []krpc.NodeAddr {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []krpc.NodeAddr
	for ap, at := range s.m[ih] {
		if now.Sub(at) > peerTTL {
			continue
		}
		out = append(out, krpc.NodeAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())})
		if len(out) == maxValues {
			break
		}
	}
	return out
}

// expire drops every expired entry.
func (s *peerStore) expire(now time.Time) {
	for ih, peers := range s.m {
		expirePeers(peers, now)
		if len(peers) == 0 {
			delete(s.m, ih)
		}
	}
}

func expirePeers(peers map[netip.AddrPort]time.Time, now time.Time) {
	for ap, at := range peers {
		if now.Sub(at) > peerTTL {
			delete(peers, ap)
		}
	}
}
