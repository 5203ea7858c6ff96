package storage

import (
	"cmp"
	"maps"
	"slices"
	"sync"
)

// DefaultBufferLimit is how many bytes of received, not yet verified pieces one torrent keeps in
// memory before it writes further blocks straight to the files (the library's own way). More
// did not help long pieces: 1 GiB in 16 MiB pieces moved at 340 MB/s with 32 MiB (8 runs, 2.9
// CPU s/GiB for the leecher) and at 278 MB/s with 64 MiB (3.9 s, peak RSS 94 -> 159 MiB).
const DefaultBufferLimit = 32 << 20

// buffers holds the blocks of pieces that are being downloaded, in memory, until the piece is
// hashed. A download then costs one write per piece instead of one per 16 KiB block, the block
// writes leave the connection's read loop at memory speed, and hashing a piece reads memory
// instead of reading the piece back from the file. Only a piece that passed its hash reaches the
// disk (MarkComplete writes it out before it is recorded complete); a piece that failed is never
// written.
//
// A piece's content is always its file bytes with the buffer's written ranges laid over them.
// Whenever a piece must be read while its buffer does not cover it whole (the library's first
// check of a piece of unknown state, a read of a partly received piece), the buffer is written
// out first and dropped, and the file alone holds the piece again. So nothing is lost if the
// limit is reached (further pieces go to the files directly) or a check overlaps a download.
type buffers struct {
	limit  int64 // bytes of piece buffers at most; 0 turns buffering off
	pieceN int64 // the torrent's piece length

	mu   sync.Mutex
	used int64
	high int64 // the most ever used, for tests and benchmarks
	bufs map[int]*pieceBuf
	free [][]byte // released buffers of pieceN bytes, for reuse (with used, within limit)
	// unwritten are verified pieces whose write to the file failed: the library holds them
	// complete, but they are not on the disk (nor in the resume record).
	unwritten map[int]bool
	// direct are pieces whose blocks went straight to the file, the buffers being full when
	// they came: they stay on the file until hashed. A buffer made for the rest of such a
	// piece would only be written out again before the hash could read the piece (1 GiB in
	// 16 MiB pieces spent 0.37 s of 3 CPU seconds doing that).
	direct map[int]bool
}

// pieceBuf is one piece's received bytes and which ranges of it were written.
type pieceBuf struct {
	mu      sync.Mutex
	data    []byte
	written []span // sorted, not overlapping, not touching
	covered int64  // total length of written
	dead    bool   // released: look the piece up again
}

type span struct{ lo, hi int64 }

func newBuffers(limit, pieceLength int64) *buffers {
	if pieceLength <= 0 || pieceLength > limit {
		limit = 0
	}
	return &buffers{limit: limit, pieceN: pieceLength, bufs: map[int]*pieceBuf{}, unwritten: map[int]bool{}, direct: map[int]bool{}}
}

// get returns piece i's buffer, making one for a piece of length n when create is set and the
// limit allows. The buffer is returned locked. A piece refused a buffer for a block to be
// written is direct from then on, until settled.
func (b *buffers) get(i int, n int64, create bool) *pieceBuf {
	for {
		b.mu.Lock()
		pb := b.bufs[i]
		if pb == nil {
			if !create || b.direct[i] || b.used+b.pieceN > b.limit {
				if create && b.limit > 0 {
					b.direct[i] = true
				}
				b.mu.Unlock()
				return nil
			}
			pb = &pieceBuf{data: b.alloc()[:n]}
			b.bufs[i] = pb
			b.used += b.pieceN
			b.high = max(b.high, b.used)
		}
		b.mu.Unlock()
		pb.mu.Lock()
		if !pb.dead {
			return pb
		}
		pb.mu.Unlock()
	}
}

func (b *buffers) alloc() []byte {
	if k := len(b.free); k > 0 {
		d := b.free[k-1]
		b.free = b.free[:k-1]
		return d
	}
	return make([]byte, b.pieceN)
}

// release drops piece i's buffer, which the caller holds locked.
func (b *buffers) release(i int, pb *pieceBuf) {
	pb.dead = true
	d := pb.data[:cap(pb.data)]
	pb.data, pb.written, pb.covered = nil, nil, 0
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bufs[i] == pb {
		delete(b.bufs, i)
		b.used -= b.pieceN
	}
	// Kept for the next piece, within the limit: a new buffer costs page faults and GC work.
	if int64(len(b.free))*b.pieceN+b.used < b.limit {
		b.free = append(b.free, d)
	}
}

// pieces lists the pieces that have a buffer.
func (b *buffers) pieces() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.bufs))
}

// settled says piece i was hashed or its state set: the next blocks written to it may be
// buffered again.
func (b *buffers) settled(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.direct, i)
}

// setUnwritten records whether verified piece i failed to reach its file.
func (b *buffers) setUnwritten(i int, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if failed {
		b.unwritten[i] = true
	} else {
		delete(b.unwritten, i)
	}
}

// unwrittenPieces lists the pieces setUnwritten holds failed, in order.
func (b *buffers) unwrittenPieces() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Sorted(maps.Keys(b.unwritten))
}

// highWater is the most bytes the buffers ever held at once.
func (b *buffers) highWater() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.high
}

// write copies p into the buffer at off and records the range as written.
func (pb *pieceBuf) write(p []byte, off int64) {
	copy(pb.data[off:], p)
	pb.add(span{off, off + int64(len(p))})
}

// add merges s into the written ranges.
func (pb *pieceBuf) add(s span) {
	if s.lo >= s.hi {
		return
	}
	// The first range that ends at or after s starts, and the first that starts after s ends.
	i, _ := slices.BinarySearchFunc(pb.written, s.lo, func(w span, lo int64) int { return cmp.Compare(w.hi, lo) })
	j := i
	for j < len(pb.written) && pb.written[j].lo <= s.hi {
		s.lo = min(s.lo, pb.written[j].lo)
		s.hi = max(s.hi, pb.written[j].hi)
		pb.covered -= pb.written[j].hi - pb.written[j].lo
		j++
	}
	pb.written = slices.Replace(pb.written, i, j, s)
	pb.covered += s.hi - s.lo
}

// full says every byte of the piece was written to the buffer.
func (pb *pieceBuf) full() bool { return pb.covered == int64(len(pb.data)) }

// covers says the range [lo, hi) was written to the buffer.
func (pb *pieceBuf) covers(lo, hi int64) bool {
	i, _ := slices.BinarySearchFunc(pb.written, lo, func(w span, lo int64) int { return cmp.Compare(w.hi, lo+1) })
	return i < len(pb.written) && pb.written[i].lo <= lo && pb.written[i].hi >= hi
}
