package route

import (
	"math/rand/v2"
	"net/netip"
	"slices"
)

// Book is the set of known overlay addresses, learned from hellos and pongs: where to dial
// when a neighbour is missing, and what to gossip. It holds at most capacity addresses; a
// new one evicts the oldest, since an address heard of recently is likelier to be alive.
// It is a plain slice, searched in full on each change: addresses are learned a few at a
// time, and a simulation holds a book per node.
type Book struct {
	capacity int
	addrs    []netip.AddrPort // oldest first
}

// NewBook returns an empty book of at most capacity (at least 1) addresses.
func NewBook(capacity int) *Book {
	return &Book{capacity: max(capacity, 1)}
}

// Add records a as the newest address, evicting the oldest past capacity. An address
// already known becomes the newest. Addresses nothing can dial (invalid, unspecified,
// port 0) are ignored.
func (b *Book) Add(a netip.AddrPort) {
	if !a.IsValid() || a.Addr().IsUnspecified() || a.Port() == 0 {
		return
	}
	if i := slices.Index(b.addrs, a); i >= 0 {
		b.addrs = slices.Delete(b.addrs, i, i+1)
	} else if len(b.addrs) >= b.capacity {
		b.addrs = slices.Delete(b.addrs, 0, 1)
	}
	b.addrs = append(b.addrs, a)
}

// Remove forgets a (it did not answer).
func (b *Book) Remove(a netip.AddrPort) {
	if i := slices.Index(b.addrs, a); i >= 0 {
		b.addrs = slices.Delete(b.addrs, i, i+1)
	}
}

// Sample picks up to n distinct addresses uniformly at random, skipping those exclude
// reports true for (nil: none).
func (b *Book) Sample(r *rand.Rand, n int, exclude func(netip.AddrPort) bool) []netip.AddrPort {
	if n <= 0 {
		return nil
	}
	var pool []netip.AddrPort
	for _, a := range b.addrs {
		if exclude == nil || !exclude(a) {
			pool = append(pool, a)
		}
	}
	n = min(n, len(pool))
	for i := range n { // the first n steps of a Fisher-Yates shuffle
		j := i + r.IntN(len(pool)-i)
		pool[i], pool[j] = pool[j], pool[i]
	}
	return pool[:n:n]
}

// Except is an exclude for Sample: true for the addresses given.
func Except(addrs ...netip.AddrPort) func(netip.AddrPort) bool {
	return func(a netip.AddrPort) bool { return slices.Contains(addrs, a) }
}

// Len is the number of addresses known.
func (b *Book) Len() int { return len(b.addrs) }
