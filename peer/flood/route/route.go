// Package route is the flood overlay's routing state, as pure data: the neighbour set, the
// table of queries seen (duplicate suppression), the reverse paths hits travel back along,
// the book of known overlay addresses, per-neighbour rate limits, and the TTL rules that
// decide where a query goes next.
//
// Nothing here does I/O, starts a goroutine, reads a clock or locks: the time is passed in
// as now, randomness as a *rand.Rand, and the node's single goroutine owns every value, so
// none is safe for concurrent use. Iteration orders are deterministic, so a seeded rand
// gives the same overlay every run.
package route

// ID names a node (its Hello's NodeID) or a query (its Query's ID). The zero ID is never a
// neighbour: in Paths it means "we are the origin".
type ID = [16]byte

// MaxTTL caps how many hops a query travels: a flood reaches at most
// d((d-1)^MaxTTL-1)/(d-2) links at degree d.
const MaxTTL = 7

// integer is any integer type, so that ClampTTL takes a flag's int and a wire uint8 alike.
type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr
}

// ClampTTL brings ttl into 1..MaxTTL.
func ClampTTL[T integer](ttl T) uint8 {
	if ttl < 1 {
		return 1
	}
	if ttl > MaxTTL {
		return MaxTTL
	}
	return uint8(ttl)
}

// Forward decides where a flooded query received from neighbour from goes next: the TTL it
// arrived with (capped at MaxTTL) is decremented, and while it is still above 0 the query
// goes, with that TTL, to every neighbour but from. targets is sorted; nil when the query
// stops here.
//
// The origin does not call Forward: it sends its query with TTL t to every neighbour
// (n.IDs()), so that TTL 1 reaches exactly its neighbours, and TTL t at most
// d((d-1)^t-1)/(d-2) links at degree d.
func Forward(n *Neighbours, from ID, ttl uint8) (targets []ID, nextTTL uint8) {
	ttl = min(ttl, MaxTTL)
	if ttl <= 1 {
		return nil, 0
	}
	for _, id := range n.ids {
		if id != from {
			targets = append(targets, id)
		}
	}
	return targets, ttl - 1
}
