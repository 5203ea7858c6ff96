package route

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"slices"
)

// Neighbours is the node's set of links, by node ID, each with the overlay address the
// neighbour accepts links on. The node dials while it has fewer than Degree (Want), accepts
// up to 2*Degree, and refuses links past that (Full).
type Neighbours struct {
	degree int
	ids    []ID // sorted
	addrs  map[ID]netip.AddrPort
}

// NewNeighbours returns an empty set for the given degree (at least 1).
func NewNeighbours(degree int) *Neighbours {
	return &Neighbours{degree: max(degree, 1), addrs: make(map[ID]netip.AddrPort)}
}

// Add adds a neighbour. It is false, and changes nothing, if id is already there, if the
// set is at 2*Degree, or for the zero ID.
func (n *Neighbours) Add(id ID, addr netip.AddrPort) bool {
	if id == (ID{}) || n.Full() {
		return false
	}
	i, found := n.search(id)
	if found {
		return false
	}
	n.ids = slices.Insert(n.ids, i, id)
	n.addrs[id] = addr
	return true
}

// Remove drops a neighbour; false if it was not there.
func (n *Neighbours) Remove(id ID) bool {
	i, found := n.search(id)
	if !found {
		return false
	}
	n.ids = slices.Delete(n.ids, i, i+1)
	delete(n.addrs, id)
	return true
}

func (n *Neighbours) search(id ID) (int, bool) {
	return slices.BinarySearchFunc(n.ids, id, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
}

// Has reports whether id is a neighbour.
func (n *Neighbours) Has(id ID) bool { _, ok := n.addrs[id]; return ok }

// Len is the number of neighbours.
func (n *Neighbours) Len() int { return len(n.ids) }

// Degree is the number of neighbours the node aims for; it holds up to twice that.
func (n *Neighbours) Degree() int { return n.degree }

// Want is how many more links to dial: Degree - Len, or 0.
func (n *Neighbours) Want() int { return max(0, n.degree-len(n.ids)) }

// Full reports whether the set is at 2*Degree: incoming links are then refused.
func (n *Neighbours) Full() bool { return len(n.ids) >= 2*n.degree }

// IDs is the neighbours' IDs, sorted; a fresh slice.
func (n *Neighbours) IDs() []ID { return slices.Clone(n.ids) }

// Addr is a neighbour's overlay address.
func (n *Neighbours) Addr(id ID) (netip.AddrPort, bool) {
	a, ok := n.addrs[id]
	return a, ok
}

// Random picks a neighbour uniformly at random, other than except (a random walk's next
// step: not back to the sender). It is false if there is no such neighbour.
func (n *Neighbours) Random(r *rand.Rand, except ID) (ID, bool) {
	k := len(n.ids)
	skip, found := n.search(except)
	if found {
		k--
	}
	if k == 0 {
		return ID{}, false
	}
	i := r.IntN(k)
	if found && i >= skip {
		i++
	}
	return n.ids[i], true
}
