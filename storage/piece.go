package storage

import (
	"errors"
	"io"
	"io/fs"
	"os"

	g "github.com/anacrolix/generics"
	tstorage "github.com/anacrolix/torrent/storage"

	"github.com/anacrolix/torrent/metainfo"
)

// piece is the library's file piece with three changes:
//
//   - Blocks received for a piece are kept in memory (buffers) until the piece is hashed, and
//     written to the file in one go once it passed; a failed piece never reaches the disk.
//   - A piece lying in a file that was not on disk when the torrent opened is known incomplete,
//     so the library does not hash it to find out (its first check of pieces of unknown state).
//   - Marking a piece not complete does not "restore the part file" while the file has no final
//     name yet.
//
// The last: the library's MarkNotComplete records the piece incomplete and then renames each of
// its files from the final name back to NAME.part. Before a file is complete there is nothing to
// rename, but the rename closes the cached writer of NAME.part all the same, while other
// goroutines are writing blocks and hashing pieces through it: they fail with "file already
// closed". With plain file IO (no memory maps, see Open) that happened in most fast downloads.
type piece struct {
	tstorage.PieceImpl
	*pieceSet
	key    metainfo.PieceKey
	length int64
}

// pieceSet is what the pieces of one open torrent share.
type pieceSet struct {
	pc    tstorage.PieceCompletion
	files func(piece int) []string // final paths of the files the piece lies in
	bufs  *buffers
	cache *cache
	// absent says a file the piece lies in was on disk under neither name when the torrent
	// opened: until the record knows better, the piece is incomplete.
	absent func(piece int) bool
	// failed is told when a verified piece cannot be written to its file.
	failed func(error)
}

func (p piece) Completion() tstorage.Completion {
	c := p.PieceImpl.Completion()
	if !c.Ok && c.Err == nil && p.absent(p.key.Index) {
		return tstorage.Completion{Ok: true, Complete: false}
	}
	return c
}

// WriteAt keeps the block in the piece's buffer, or writes it to the file when the buffers are
// full.
func (p piece) WriteAt(b []byte, off int64) (int, error) {
	p.cache.drop(p.key.Index)
	if pb := p.bufs.get(p.key.Index, p.length, true); pb != nil {
		pb.write(b, off)
		pb.mu.Unlock()
		return len(b), nil
	}
	return p.PieceImpl.WriteAt(b, off)
}

// flush writes the buffer of the piece, if any, to the file and drops it. With keep, a buffer
// that cannot be written is kept (its bytes are then still read from memory).
func (p piece) flush(keep bool) error {
	pb := p.bufs.get(p.key.Index, p.length, false)
	if pb == nil {
		return nil
	}
	defer pb.mu.Unlock()
	for _, s := range pb.written {
		if _, err := p.PieceImpl.WriteAt(pb.data[s.lo:s.hi], s.lo); err != nil {
			if !keep {
				p.bufs.release(p.key.Index, pb)
			}
			return err
		}
	}
	p.bufs.release(p.key.Index, pb)
	return nil
}

// WriteTo hands the piece to the library's hasher: from memory when the buffer holds it whole,
// else from the file (with what the buffer holds written there first).
func (p piece) WriteTo(w io.Writer) (int64, error) {
	if pb := p.bufs.get(p.key.Index, p.length, false); pb != nil {
		if pb.full() {
			defer pb.mu.Unlock()
			n, err := w.Write(pb.data)
			return int64(n), err
		}
		pb.mu.Unlock()
		if err := p.flush(true); err != nil {
			return 0, err
		}
	}
	p.bufs.settled(p.key.Index)
	if wt, ok := p.PieceImpl.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, io.NewSectionReader(p.PieceImpl, 0, p.length))
}

// ReadAt reads from the buffer when it holds the range, else from the cache of complete pieces'
// segments (see cache), else from the file.
func (p piece) ReadAt(b []byte, off int64) (int, error) {
	if pb := p.bufs.get(p.key.Index, p.length, false); pb != nil {
		if pb.covers(off, off+int64(len(b))) {
			defer pb.mu.Unlock()
			return copy(b, pb.data[off:]), nil
		}
		pb.mu.Unlock()
		if err := p.flush(true); err != nil {
			return 0, err
		}
	}
	if n, ok := p.cache.read(p.key.Index, b, off, p.length); ok {
		return n, nil
	}
	if seg, lo, hi := p.cache.segment(off, p.length); p.cache.limit > 0 && off+int64(len(b)) <= hi {
		if c, err := p.pc.Get(p.key); err == nil && c.Ok && c.Complete {
			// A complete piece, read for a peer: read the segment (the whole piece when it
			// is short enough) in one go, and keep it for the next blocks.
			d := p.cache.buffer(hi - lo)
			if n, _ := p.PieceImpl.ReadAt(d, lo); int64(n) == hi-lo {
				k := copy(b, d[off-lo:])
				p.cache.put(p.key.Index, seg, d) // d is the cache's from here: another reader may reuse it
				return k, nil
			}
			p.cache.recycle(d)
		}
	}
	return p.PieceImpl.ReadAt(b, off)
}

// MarkComplete writes the verified piece to its file, and only then lets the library record it
// complete. A piece that cannot be written is not recorded, and failed is told.
func (p piece) MarkComplete() error {
	p.cache.drop(p.key.Index)
	p.bufs.settled(p.key.Index)
	if err := p.flush(true); err != nil {
		p.bufs.setUnwritten(p.key.Index, true)
		if p.failed != nil {
			p.failed(err)
		}
		return err
	}
	p.bufs.setUnwritten(p.key.Index, false)
	return p.PieceImpl.MarkComplete()
}

func (p piece) MarkNotComplete() error {
	p.cache.drop(p.key.Index)
	p.bufs.settled(p.key.Index)
	for _, f := range p.files(p.key.Index) {
		if _, err := os.Lstat(f); !errors.Is(err, fs.ErrNotExist) {
			return p.PieceImpl.MarkNotComplete() // a file at its final name: the library's way
		}
	}
	return p.pc.Set(p.key, g.Some(false))
}
