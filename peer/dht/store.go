package dht

import (
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

// Limits of the peer store: what this node remembers for others. An announcer with a valid
// token can name any port and any info-hash, so each bound holds whatever it sends: at most
// maxStored peers in all (about 10 MB), spread over at most maxHashes info-hashes, at most
// maxPeersPerHash for one of them and at most maxPerIP from one IP address (so that one
// flooding host fills a hundredth of the store, and honest announces still find room).
const (
	// peerTTL is how long an announce is kept; peers announce again well before (BEP 5 clients
	// every 15 to 30 minutes).
	peerTTL = 30 * time.Minute
	// maxHashes, maxPeersPerHash, maxStored and maxPerIP bound the memory an announcer can
	// make us spend.
	maxHashes       = 10000
	maxPeersPerHash = 1000
	maxStored       = 100000
	maxPerIP        = 1000
	// sweepEvery is how often expired peers are dropped from the whole store (on an
	// announce), and sweepFull how often at most when a bound is reached (a sweep walks the
	// whole store: a flood of refused announces must not make every one of them pay it).
	sweepEvery = time.Minute
	sweepFull  = time.Second
	// maxValues is how many peers one get_peers reply carries (6 bytes each, IPv4).
	maxValues = 100
)

// peerStore keeps the peers announced to this node, keyed by ip:port. (The library's
// InMemory keys by IP alone and then fails to decode its own keys: it never returns a peer.)
type peerStore struct {
	mu    sync.Mutex
	m     map[peer_store.InfoHash]map[netip.AddrPort]time.Time
	total int                // peers in m
	perIP map[netip.Addr]int // peers in m by IP
	swept time.Time          // last sweep of the whole store
}

var _ peer_store.Interface = (*peerStore)(nil)

func newPeerStore() *peerStore {
	return &peerStore{m: make(map[peer_store.InfoHash]map[netip.AddrPort]time.Time), perIP: make(map[netip.Addr]int), swept: time.Now()}
}

// AddPeer records an announce.
func (s *peerStore) AddPeer(ih peer_store.InfoHash, na krpc.NodeAddr) {
	ip, ok := netip.AddrFromSlice(na.IP)
	if !ok || na.Port <= 0 || na.Port > 65535 {
		return
	}
	s.add(ih, netip.AddrPortFrom(ip.Unmap(), uint16(na.Port)), time.Now())
}

// add records that ap announced ih at now; it says false when a bound left no room for a
// new peer (a peer already stored is always refreshed).
func (s *peerStore) add(ih peer_store.InfoHash, ap netip.AddrPort, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.swept) >= sweepEvery {
		s.expire(now)
	}
	peers := s.m[ih]
	if _, ok := peers[ap]; ok {
		peers[ap] = now
		return true
	}
	full := func() bool {
		return s.total >= maxStored || s.perIP[ap.Addr()] >= maxPerIP ||
			peers == nil && len(s.m) >= maxHashes || len(peers) >= maxPeersPerHash
	}
	if full() {
		if now.Sub(s.swept) < sweepFull {
			return false
		}
		s.expire(now)
		peers = s.m[ih]
		if full() {
			return false
		}
	}
	if peers == nil {
		peers = make(map[netip.AddrPort]time.Time)
		s.m[ih] = peers
	}
	peers[ap] = now
	s.total++
	s.perIP[ap.Addr()]++
	return true
}

// GetPeers lists up to maxValues live peers of ih (a random choice, when there are more).
func (s *peerStore) GetPeers(ih peer_store.InfoHash) []krpc.NodeAddr { return s.get(ih, time.Now()) }

func (s *peerStore) get(ih peer_store.InfoHash, now time.Time) []krpc.NodeAddr {
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

// size is how many info-hashes and peers the store holds, expired ones included.
func (s *peerStore) size() (hashes, peers int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m), s.total
}

// expire drops every expired entry; s.mu is held.
func (s *peerStore) expire(now time.Time) {
	s.swept = now
	for ih, peers := range s.m {
		for ap, at := range peers {
			if now.Sub(at) > peerTTL {
				delete(peers, ap)
				s.total--
				if c := s.perIP[ap.Addr()] - 1; c > 0 {
					s.perIP[ap.Addr()] = c
				} else {
					delete(s.perIP, ap.Addr())
				}
			}
		}
		if len(peers) == 0 {
			delete(s.m, ih)
		}
	}
}
