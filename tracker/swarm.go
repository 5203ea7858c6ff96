package tracker

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// swarm is what the tracker knows of one torrent. The Server's mutex guards it.
type swarm struct {
	byAddr    map[netip.AddrPort]*peerEntry
	list      []*peerEntry // the same peers, for random sampling; peerEntry.index is the position
	seeders   int
	completed int64     // completed events: scrape's "downloaded"
	lastSeen  time.Time // last announce
	// nextExpiry is no later than the earliest expiry of a peer in list (zero: no peers), so
	// that expire costs nothing until a peer may be due.
	nextExpiry time.Time
}

// peerEntry is one peer of a swarm, keyed by its address: the IP its request came from and
// the port it announced.
type peerEntry struct {
	addr    netip.AddrPort
	id      string // 20 bytes
	seed    bool   // left == 0
	expires time.Time
	index   int
}

func newSwarm() *swarm {
	return &swarm{byAddr: make(map[netip.AddrPort]*peerEntry)}
}

func (t *swarm) leechers() int { return len(t.list) - t.seeders }

// add lists a new peer.
func (t *swarm) add(p *peerEntry) {
	p.index = len(t.list)
	t.list = append(t.list, p)
	t.byAddr[p.addr] = p
	if p.seed {
		t.seeders++
	}
	if t.nextExpiry.IsZero() || p.expires.Before(t.nextExpiry) {
		t.nextExpiry = p.expires
	}
}

// remove drops a listed peer.
func (t *swarm) remove(p *peerEntry) {
	last := t.list[len(t.list)-1]
	t.list[p.index] = last
	last.index = p.index
	t.list[len(t.list)-1] = nil
	t.list = t.list[:len(t.list)-1]
	delete(t.byAddr, p.addr)
	if p.seed {
		t.seeders--
	}
	if len(t.list) == 0 {
		t.nextExpiry = time.Time{}
	}
}

// setSeed records whether p has the whole torrent.
func (t *swarm) setSeed(p *peerEntry, seed bool) {
	if p.seed == seed {
		return
	}
	p.seed = seed
	if seed {
		t.seeders++
	} else {
		t.seeders--
	}
}

// expire drops the peers whose time is up.
func (t *swarm) expire(now time.Time) {
	if t.nextExpiry.IsZero() || now.Before(t.nextExpiry) {
		return
	}
	var next time.Time
	for i := 0; i < len(t.list); {
		p := t.list[i]
		if !now.Before(p.expires) {
			t.remove(p) // moves the last peer to i
			continue
		}
		if next.IsZero() || p.expires.Before(next) {
			next = p.expires
		}
		i++
	}
	t.nextExpiry = next
}

// pick returns up to n peers chosen at random among those ok accepts: a partial
// Fisher-Yates shuffle of the list's indexes, which leaves the list itself as it is.
func (t *swarm) pick(n int, ok func(*peerEntry) bool) []*peerEntry {
	size := len(t.list)
	if n <= 0 || size == 0 {
		return nil
	}
	out := make([]*peerEntry, 0, min(n, size))
	moved := make(map[int]int) // position -> index now there, where it differs
	at := func(i int) int {
		if v, ok := moved[i]; ok {
			return v
		}
		return i
	}
	for i := 0; i < size && len(out) < n; i++ {
		j := i + rand.IntN(size-i)
		vi, vj := at(i), at(j)
		moved[j] = vi
		if p := t.list[vj]; ok(p) {
			out = append(out, p)
		}
	}
	return out
}
