package dht

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	peer_store "github.com/anacrolix/dht/v2/peer-store"
)

// ipN is the n-th address of 10.0.0.0/8.
func ipN(n int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)}) }

// hashN is an info-hash made from n.
func hashN(n int) peer_store.InfoHash {
	var ih peer_store.InfoHash
	ih[0], ih[1], ih[2], ih[19] = byte(n>>16), byte(n>>8), byte(n), 0x5a
	return ih
}

func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPeerStoreBounds: announces with valid tokens cannot grow the peer store past its
// bounds, whoever sends them: one IP gets maxPerIP peers in, one info-hash holds
// maxPeersPerHash, the store maxHashes info-hashes and maxStored peers in all; a peer
// already stored is refreshed; peers expire after peerTTL and their room is given back.
func TestPeerStoreBounds(t *testing.T) {
	s := newPeerStore()
	now := time.Now()
	// One IP announcing thousands of torrents (any port: the announcer names it).
	attacker := ipN(1)
	stored := 0
	for i := range 3 * maxPerIP {
		if s.add(hashN(i), netip.AddrPortFrom(attacker, uint16(1+i)), now) {
			stored++
		}
	}
	if stored != maxPerIP {
		t.Fatalf("one IP got %d peers stored, want %d", stored, maxPerIP)
	}
	if !s.add(hashN(0), netip.AddrPortFrom(attacker, 1), now) {
		t.Error("a stored peer announcing again was refused")
	}
	honest := netip.AddrPortFrom(ipN(2), 6881)
	if !s.add(hashN(7), honest, now) || len(s.get(hashN(7), now)) != 2 {
		t.Fatal("an honest announce was refused while one IP floods")
	}

	// Many IPs, one torrent.
	for i := range 2 * maxPeersPerHash {
		s.add(hashN(1<<20), netip.AddrPortFrom(ipN(100+i), 1), now)
	}
	if n := len(s.m[hashN(1<<20)]); n != maxPeersPerHash {
		t.Fatalf("one torrent holds %d peers, want %d", n, maxPeersPerHash)
	}

	// Many IPs, many torrents: fill the store.
	before := heapAfterGC()
	for i := range 2 * maxStored {
		s.add(hashN(i%(2*maxHashes)), netip.AddrPortFrom(ipN(10000+i), 1), now)
	}
	hashes, peers := s.size()
	if hashes > maxHashes || peers > maxStored || peers != s.total {
		t.Fatalf("store holds %d info-hashes and %d peers, want at most %d and %d", hashes, peers, maxHashes, maxStored)
	}
	sum := 0
	for _, c := range s.perIP {
		sum += c
	}
	if sum != peers {
		t.Fatalf("per-IP counts add up to %d, want %d", sum, peers)
	}
	full := heapAfterGC()
	t.Logf("full store: %d info-hashes, %d peers; heap %.1f MiB more than before filling it (%d bytes a peer)",
		hashes, peers, float64(full-before)/(1<<20), int64(full-before)/int64(peers))
	if !s.add(hashN(7), honest, now) {
		t.Error("a stored peer was refused its refresh in a full store")
	}
	if s.add(hashN(8), netip.AddrPortFrom(ipN(3), 1), now.Add(time.Millisecond)) {
		t.Error("a full store took a new peer")
	}

	// Expiry: nothing is handed out after peerTTL, and the next announce (a sweep is due)
	// frees the room of every expired peer.
	later := now.Add(peerTTL + time.Second)
	if got := s.get(hashN(7), later); len(got) != 0 {
		t.Fatalf("expired peers handed out: %v", got)
	}
	if !s.add(hashN(8), netip.AddrPortFrom(ipN(3), 1), later) {
		t.Fatal("announce refused after every peer expired")
	}
	if hashes, peers := s.size(); hashes != 1 || peers != 1 || len(s.perIP) != 1 {
		t.Fatalf("after expiry: %d info-hashes, %d peers, %d IPs; want 1, 1, 1", hashes, peers, len(s.perIP))
	}
	if !s.add(hashN(9), netip.AddrPortFrom(attacker, 1), later) {
		t.Fatal("the flooding IP's expired peers still count against it")
	}
}

// TestLimiter: one IP gets queryBurst queries at once, then queryRate a second; other IPs are
// not affected; past maxSources IPs, the newcomers share one bucket; idle sources are
// forgotten.
func TestLimiter(t *testing.T) {
	l := newLimiter()
	now := time.Now()
	n := 0
	for range 10 * queryBurst {
		if l.allow(ipN(1), now) {
			n++
		}
	}
	if n != queryBurst {
		t.Fatalf("%d queries allowed at once, want %d", n, queryBurst)
	}
	if !l.allow(ipN(2), now) {
		t.Fatal("another IP was refused")
	}
	n = 0
	for i := range 1000 { // one second, a query a millisecond
		if l.allow(ipN(1), now.Add(time.Duration(i+1)*time.Millisecond)) {
			n++
		}
	}
	if n < queryRate-1 || n > queryRate+1 {
		t.Fatalf("%d queries allowed in a second, want %d", n, queryRate)
	}
	for i := range maxSources + 10 {
		l.allow(ipN(1000+i), now)
	}
	if len(l.buckets) > maxSources {
		t.Fatalf("%d buckets, want at most %d", len(l.buckets), maxSources)
	}
	n = 0
	for i := range 10 * queryBurst {
		if l.allow(ipN(1<<20+i), now) { // a new IP each time: Sybils
			n++
		}
	}
	if n > queryBurst {
		t.Fatalf("%d queries of new IPs allowed with the table full, want at most %d", n, queryBurst)
	}
	// Sources idle long enough to have a full bucket again are forgotten.
	later := now.Add(2 * time.Duration(queryBurst/queryRate) * time.Second)
	l.allow(ipN(1), later)
	if len(l.buckets) > 1 {
		t.Fatalf("%d buckets kept after every source but one went idle", len(l.buckets))
	}
}

// TestPingBookBound: serve remembers at most maxPinged contacts; a contact is pinged once
// per reverifyAfter.
func TestPingBookBound(t *testing.T) {
	b := &pingBook{m: make(map[netip.AddrPort]time.Time)}
	now := time.Now()
	ap := netip.AddrPortFrom(ipN(1), 1)
	if !b.due(ap, now) || b.due(ap, now.Add(time.Minute)) || !b.due(ap, now.Add(reverifyAfter)) {
		t.Fatal("a contact is pinged once per reverifyAfter")
	}
	for i := range 3 * maxPinged {
		b.due(netip.AddrPortFrom(ipN(i), 2), now)
	}
	if len(b.m) > maxPinged {
		t.Fatalf("%d contacts remembered, want at most %d", len(b.m), maxPinged)
	}
	if !b.due(netip.AddrPortFrom(ipN(1<<20), 1), now.Add(2*reverifyAfter)) || len(b.m) != 1 {
		t.Fatalf("old contacts not forgotten: %d remembered", len(b.m))
	}
}

// TestMeterBound: a flood of get_peers queries (never answered) does not grow the Meter's
// memory of queries to answer past its bound.
func TestMeterBound(t *testing.T) {
	m := NewMeter()
	for i := range 10 * maxOpen {
		m.queryRead(txKey{netip.AddrPortFrom(ipN(i), 1), "aa"})
	}
	if n := len(m.toAnswer); n > 4*maxOpen {
		t.Fatalf("%d queries remembered, want at most %d", n, 4*maxOpen)
	}
}
