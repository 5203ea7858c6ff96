package dht

import (
	"net"
	"sync"
	"sync/atomic"
)

// countingConn is the node's UDP socket. It counts the queries the node sends and the replies
// it receives, and lets Close wait until the library's read loop has stopped reading.
type countingConn struct {
	net.PacketConn
	queries, replies atomic.Int64
	reading          sync.RWMutex // held for reading by each ReadFrom
	once             sync.Once
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, addr)
	if err == nil && krpcType(b) == 'q' {
		c.queries.Add(1)
	}
	return n, err
}

func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.reading.RLock()
	defer c.reading.RUnlock()
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		if t := krpcType(b[:n]); t == 'r' || t == 'e' {
			c.replies.Add(1)
		}
	}
	return n, addr, err
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

// krpcType is the "y" of a KRPC message (q: query, r: reply, e: error), or 0 when b is not a
// bencoded dictionary with one.
func krpcType(b []byte) byte {
	if len(b) < 2 || b[0] != 'd' {
		return 0
	}
	i := 1
	for i < len(b) && b[i] != 'e' {
		key, next, ok := bstring(b, i)
		if !ok {
			return 0
		}
		if key == "y" {
			v, _, ok := bstring(b, next)
			if !ok || len(v) != 1 {
				return 0
			}
			return v[0]
		}
		if i, ok = skip(b, next, 0); !ok {
			return 0
		}
	}
	return 0
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
