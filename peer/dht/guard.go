package dht

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// A node's socket (countingConn) checks every datagram before the library reads it, and
// drops, counting it, what is not a well-formed message this node expects:
//
//   - a datagram over maxPacket bytes (a KRPC message is well under 2 KiB);
//   - one that is not a bencoded dictionary with "y" and "t", whose values are not of the
//     types KRPC gives them (a wrong-typed "a" or "r", an id that is not 20 bytes, a port
//     that is not a number), or whose transaction id is over maxTxID bytes (the library
//     would drop those too, but uncounted, and write each one to standard error);
//   - a query of a method other than ping, find_node, get_peers and announce_peer. The
//     library would answer BEP 44's get and put too, but a put or get without arguments
//     panics it (a nil dereference that kills the process), its BEP 44 store has no bound,
//     and it keeps a counter per method name it is sent (an attacker's names included,
//     forever);
//   - a query from an IP address that has sent more than queryBurst queries, refilled at
//     queryRate a second: one flooding host gets a few of its queries answered, not all of
//     them, and takes neither the answer queue nor the CPU from the others;
//   - a reply to no query of ours (nothing the library would take either, but a node that
//     replied counts as good and is handed out to others: only a real reply makes it so).
//
// What serve and answer refuse (a full queue, a bad token, a full store) is counted too:
// Node.Dropped reads it all.

// Bounds of what is read.
const (
	// maxPacket is the largest datagram read; larger ones are dropped.
	maxPacket = 8 << 10
	// maxTxID is the longest transaction id accepted (the library's are a few bytes).
	maxTxID = 32
	// queryRate and queryBurst bound the queries read from one IP address: queryBurst at once,
	// then queryRate a second.
	queryRate  = 100
	queryBurst = 400
	// maxSources is how many IP addresses the rate limiter remembers; past it, sources it
	// does not know share one bucket of queryBurst, refilled at queryRate.
	maxSources = 1 << 16
)

// pruneEvery is how often at most a full table (of sources, queries, contacts) is searched
// for entries to forget: the search walks the whole table, and a flood that keeps the table
// full must not make each of its datagrams pay for a walk.
const pruneEvery = time.Second

// pruneDue says whether a full table last searched at *last may be searched at now, and if
// so records that it is.
func pruneDue(last *time.Time, now time.Time) bool {
	if now.Sub(*last) < pruneEvery {
		return false
	}
	*last = now
	return true
}

// methods are the queries a node serves: the library answers ping, answer the others.
var methods = map[string]bool{"ping": true, "find_node": true, "get_peers": true, "announce_peer": true}

// Dropped counts what a node refused: datagrams it did not read, queries it did not answer,
// announces it did not store. Each count only goes up.
type Dropped struct {
	// Garbage: datagrams that are not KRPC messages (not bencode, truncated, values of the
	// wrong type, ids not 20 bytes long, transaction ids over 32 bytes).
	Garbage int64 `json:"garbage"`
	// Oversize: datagrams over 8 KiB.
	Oversize int64 `json:"oversize"`
	// Unknown: queries of a method not served (anything but ping, find_node, get_peers and
	// announce_peer).
	Unknown int64 `json:"unknown"`
	// Unsolicited: replies to no query this node sent.
	Unsolicited int64 `json:"unsolicited"`
	// RateLimited: queries over their IP address's rate (100 a second, 400 at once).
	RateLimited int64 `json:"rate_limited"`
	// Overloaded: queries dropped because 128 were already waiting for their answer.
	Overloaded int64 `json:"overloaded"`
	// BadArgs: find_node, get_peers or announce_peer without arguments, or an announce
	// without a valid port (answered with an error).
	BadArgs int64 `json:"bad_args"`
	// BadToken: announce_peer whose token is missing, forged, for another IP or expired
	// (answered with an error).
	BadToken int64 `json:"bad_token"`
	// StoreFull: valid announces not stored because a bound of the peer store was reached
	// (answered with an error).
	StoreFull int64 `json:"store_full"`
}

// Total is the sum of the counts.
func (d Dropped) Total() int64 {
	return d.Garbage + d.Oversize + d.Unknown + d.Unsolicited + d.RateLimited + d.Overloaded + d.BadArgs + d.BadToken + d.StoreFull
}

// drops is where a node counts them.
type drops struct {
	garbage, oversize, unknown, unsolicited, rateLimited, overloaded, badArgs, badToken, storeFull atomic.Int64
}

func (d *drops) read() Dropped {
	return Dropped{
		Garbage: d.garbage.Load(), Oversize: d.oversize.Load(), Unknown: d.unknown.Load(),
		Unsolicited: d.unsolicited.Load(), RateLimited: d.rateLimited.Load(), Overloaded: d.overloaded.Load(),
		BadArgs: d.badArgs.Load(), BadToken: d.badToken.Load(), StoreFull: d.storeFull.Load(),
	}
}

// Dropped is what the node has refused so far (see Dropped).
func (n *Node) Dropped() Dropped { return n.drops.read() }

// wellFormed says b decodes as a KRPC message, as the library will decode it. (The library
// would drop one that does not, but uncounted, and it writes each to the process's standard
// error, whole, through anacrolix/log's global logger: a flood of them would be a flood of
// log lines.) Decoding costs some 5 to 10 µs a message.
func wellFormed(b []byte) bool {
	var m krpc.Msg
	err := bencode.Unmarshal(b, &m)
	if _, ok := err.(bencode.ErrUnusedTrailingBytes); ok {
		return true // the library takes those
	}
	return err == nil
}

// limiter is a token bucket per source IP address. A bucket that has filled up again is as
// good as none: those are forgotten (once per pruneEvery, when there are more than
// keepSources), so that the limiter remembers only the sources active in the last few
// seconds, not every node that ever queried (a node of a large simulation is queried by
// thousands).
type limiter struct {
	mu       sync.Mutex
	buckets  map[netip.Addr]bucket
	overflow bucket // for the sources not remembered, when buckets is full
	pruned   time.Time
}

// keepSources is how many buckets the limiter keeps without looking for full ones.
const keepSources = 256

type bucket struct {
	tokens float64
	at     int64 // Unix nanoseconds of the last refill
}

// refill adds the tokens earned since the last refill.
func (b *bucket) refill(now int64) {
	b.tokens = min(queryBurst, b.tokens+float64(now-b.at)/1e9*queryRate)
	b.at = now
}

func newLimiter() *limiter {
	return &limiter{buckets: make(map[netip.Addr]bucket), overflow: bucket{tokens: queryBurst}}
}

// allow takes a token from ip's bucket, if it has one.
func (l *limiter) allow(ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ns := now.UnixNano()
	if len(l.buckets) >= keepSources && pruneDue(&l.pruned, now) {
		for a, b := range l.buckets {
			if b.refill(ns); b.tokens >= queryBurst {
				delete(l.buckets, a)
			}
		}
	}
	b, ok := l.buckets[ip]
	if !ok {
		if len(l.buckets) >= maxSources {
			l.overflow.refill(ns)
			if l.overflow.tokens < 1 {
				return false
			}
			l.overflow.tokens--
			return true
		}
		b = bucket{tokens: queryBurst, at: ns}
	}
	b.refill(ns)
	if b.tokens < 1 {
		l.buckets[ip] = b
		return false
	}
	b.tokens--
	l.buckets[ip] = b
	return true
}
