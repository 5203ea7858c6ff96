package dht

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// countingConn is the node's socket. It counts the queries the node sends and the replies
// it receives, passes the get_peers exchanges to the node's Meter, drops what the node must
// not read (see guard.go), and lets Close wait until the library's read loop has stopped
// reading.
type countingConn struct {
	net.PacketConn
	local            netip.AddrPort // the socket's address, as the Meter's key for our queries
	meter            *Meter
	drops            *drops
	limit            *limiter
	queries, replies atomic.Int64
	reading          sync.RWMutex // held for reading by each ReadFrom
	once             sync.Once

	mu    sync.Mutex
	heard map[netip.AddrPort]time.Time // when each node last replied to us
	keep  bool                         // never forget a node that replied (Config.Manual)
	sent  map[txKey]time.Time          // our queries whose reply has not come, by the queried node

	prunedHeard, prunedSent time.Time // last searches of the full maps for old entries
}

func newCountingConn(pc net.PacketConn, m *Meter, keep bool, d *drops) *countingConn {
	return &countingConn{
		PacketConn: pc, local: addrPortOf(pc.LocalAddr()), meter: m, drops: d, limit: newLimiter(),
		heard: make(map[netip.AddrPort]time.Time), keep: keep, sent: make(map[txKey]time.Time),
	}
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	y, t, q := krpcHead(b)
	var undo func()
	switch y {
	case 'q':
		c.asked(txKey{addrPortOf(addr), t}) // before the write: the reply may be read before it returns
		if q == "get_peers" {
			undo = c.meter.querySent(txKey{c.local, t}, len(b))
		}
	case 'r', 'e':
		undo = c.meter.replySent(txKey{addrPortOf(addr), t}, len(b))
	}
	n, err := c.PacketConn.WriteTo(b, addr)
	if err != nil {
		if undo != nil {
			undo()
		}
		return n, err
	}
	if y == 'q' {
		c.queries.Add(1)
	}
	return n, err
}

// ReadFrom returns the next datagram the node should read; it drops the others (see
// guard.go).
func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.reading.RLock()
	defer c.reading.RUnlock()
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		if c.admit(b[:n], addrPortOf(addr)) {
			return n, addr, nil
		}
	}
}

// admit says whether the node should read b, a datagram from from, and counts it.
func (c *countingConn) admit(b []byte, from netip.AddrPort) bool {
	if len(b) > maxPacket {
		c.drops.oversize.Add(1)
		return false
	}
	y, t, q := krpcHead(b)
	if len(t) > maxTxID {
		y = 0
	}
	switch y {
	case 'q':
		if !methods[q] {
			c.drops.unknown.Add(1)
			return false
		}
		if !c.limit.allow(from.Addr(), time.Now()) {
			c.drops.rateLimited.Add(1)
			return false
		}
		if !wellFormed(b) {
			break
		}
		if q == "get_peers" {
			c.meter.queryRead(txKey{from, t})
		}
		return true
	case 'r', 'e':
		if !c.solicited(txKey{from, t}) {
			c.drops.unsolicited.Add(1)
			return false
		}
		if !wellFormed(b) {
			break
		}
		c.replies.Add(1)
		c.meter.replyRead(txKey{c.local, t}, len(b))
		c.replied(from)
		return true
	}
	c.drops.garbage.Add(1)
	return false
}

// asked records a query of ours to the node at k.querier.
func (c *countingConn) asked(k txKey) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sent) >= maxOpen && pruneDue(&c.prunedSent, now) {
		for k, at := range c.sent {
			if now.Sub(at) > openTTL {
				delete(c.sent, k)
			}
		}
	}
	c.sent[k] = now
}

// solicited says whether a reply answers a query of ours, and forgets the query.
func (c *countingConn) solicited(k txKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.sent[k]
	delete(c.sent, k)
	return ok
}

// goodFor is how long a node that replied to us counts as good (BEP 5).
const goodFor = 15 * time.Minute

// replied records that ap replied to a query of ours.
func (c *countingConn) replied(ap netip.AddrPort) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.heard) >= maxOpen && !c.keep && pruneDue(&c.prunedHeard, now) {
		for k, at := range c.heard {
			if now.Sub(at) > goodFor {
				delete(c.heard, k)
			}
		}
	}
	c.heard[ap] = now
}

// good says ap replied to a query of ours in the last 15 minutes (or ever, when forever is
// set): a good node, in BEP 5's words, one to hand out to others.
func (c *countingConn) good(ap netip.AddrPort, now time.Time, forever bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.heard[ap]
	return ok && (forever || now.Sub(at) < goodFor)
}

func (c *countingConn) Close() error {
	var err error
	c.once.Do(func() { err = c.PacketConn.Close() })
	return err
}

// shutdown closes the socket and waits for a read in progress to return; later reads fail at
// once.
func (c *countingConn) shutdown() {
	c.Close()
	c.reading.Lock()
	defer c.reading.Unlock()
}

// addrPortOf is a socket address as an unmapped netip.AddrPort (zero if it is not IP:PORT).
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if u, ok := a.(*net.UDPAddr); ok {
		ap = u.AddrPort()
	} else if a != nil {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// krpcHead reads the top-level keys of a KRPC message: its type "y" (q: query, r: reply, e:
// error; 0 when b is not a bencoded dictionary with one), its transaction id "t" and, for a
// query, its method "q".
func krpcHead(b []byte) (y byte, t, q string) {
	if len(b) < 2 || b[0] != 'd' {
		return 0, "", ""
	}
	i := 1
	for i < len(b) && b[i] != 'e' {
		key, next, ok := bstring(b, i)
		if !ok {
			return 0, "", ""
		}
		switch key {
		case "y", "t", "q":
			v, after, ok := bstring(b, next)
			if !ok {
				return 0, "", ""
			}
			switch key {
			case "y":
				if len(v) != 1 {
					return 0, "", ""
				}
				y = v[0]
			case "t":
				t = v
			case "q":
				q = v
			}
			i = after
		default:
			if i, ok = skip(b, next, 0); !ok {
				return 0, "", ""
			}
		}
	}
	if i >= len(b) {
		return 0, "", "" // no closing 'e'
	}
	return y, t, q
}

// bstring reads a bencoded string at b[i:]: its bytes and the index after it.
func bstring(b []byte, i int) (string, int, bool) {
	n := 0
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		n = n*10 + int(b[j]-'0')
		if n > len(b) {
			return "", 0, false
		}
		j++
	}
	if j == i || j >= len(b) || b[j] != ':' || j+1+n > len(b) {
		return "", 0, false
	}
	return string(b[j+1 : j+1+n]), j + 1 + n, true
}

// skip steps over one bencoded value at b[i:], returning the index after it.
func skip(b []byte, i, depth int) (int, bool) {
	if i >= len(b) || depth > 32 {
		return 0, false
	}
	switch c := b[i]; {
	case c == 'i':
		for j := i + 1; j < len(b); j++ {
			if b[j] == 'e' {
				return j + 1, true
			}
		}
		return 0, false
	case c == 'l' || c == 'd':
		i++
		for i < len(b) && b[i] != 'e' {
			var ok bool
			if i, ok = skip(b, i, depth+1); !ok {
				return 0, false
			}
		}
		if i >= len(b) {
			return 0, false
		}
		return i + 1, true
	case c >= '0' && c <= '9':
		_, j, ok := bstring(b, i)
		return j, ok
	}
	return 0, false
}
