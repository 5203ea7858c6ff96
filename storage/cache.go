package storage

import (
	"sync"
)

// DefaultCacheLimit is how many bytes of complete pieces one torrent keeps in memory for
// serving peers. A leecher asks for blocks of many pieces at once (up to 1,024 requests of
// 16 KiB: 64 pieces of 256 KiB), and the pieces must stay cached until their last block is
// asked for: with 8 MiB each piece was read 7.5 times over.
const DefaultCacheLimit = 32 << 20

// cache keeps the last complete pieces read for peers, whole. A peer asks for a piece in
// 16 KiB blocks, one request each; the library answers each by opening the file, reading the
// block and closing the file again. With the cache, the first block of a piece reads the whole
// piece in one go and the other blocks come from memory.
type cache struct {
	limit  int // pieces at most
	pieceN int64

	mu    sync.Mutex
	data  map[int][]byte
	order []int    // oldest first
	spare [][]byte // evicted buffers, for reuse
}

func newCache(limitBytes, pieceLength int64) *cache {
	n := 0
	if pieceLength > 0 {
		n = int(limitBytes / pieceLength)
	}
	if n < 2 {
		n = 0 // pieces too large to keep a useful number of them
	}
	return &cache{limit: n, pieceN: pieceLength, data: map[int][]byte{}}
}

// read copies from piece i at off into b, if the cache holds the piece.
func (c *cache) read(i int, b []byte, off int64) (int, bool) {
	if c.limit == 0 {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.data[i]
	if !ok || off >= int64(len(d)) {
		return 0, false
	}
	return copy(b, d[off:]), true
}

// buffer returns a buffer for a piece of length n to be filled and then put.
func (c *cache) buffer(n int64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := len(c.spare); k > 0 {
		d := c.spare[k-1]
		c.spare = c.spare[:k-1]
		return d[:n]
	}
	return make([]byte, n, c.pieceN)
}

// put keeps d as piece i's bytes, evicting the oldest piece past the limit.
func (c *cache) put(i int, d []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.data[i]; ok || c.limit == 0 {
		c.recycleLocked(d)
		return
	}
	for len(c.order) >= c.limit {
		old := c.order[0]
		c.order = c.order[1:]
		c.recycleLocked(c.data[old])
		delete(c.data, old)
	}
	c.data[i] = d
	c.order = append(c.order, i)
}

// recycle takes back a buffer from buffer that was not put.
func (c *cache) recycle(d []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recycleLocked(d)
}

func (c *cache) recycleLocked(d []byte) {
	if len(c.spare) < c.limit {
		c.spare = append(c.spare, d)
	}
}

// drop forgets piece i (its bytes are changing).
func (c *cache) drop(i int) {
	if c.limit == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.data[i]; ok {
		delete(c.data, i)
		for k, j := range c.order {
			if j == i {
				c.order = append(c.order[:k], c.order[k+1:]...)
				break
			}
		}
		c.recycleLocked(d)
	}
}
