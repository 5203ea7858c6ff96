package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	tstorage "github.com/anacrolix/torrent/storage"

	"github.com/anacrolix/torrent/metainfo"
)

// openBuffered opens testTorrent's content (16 KiB pieces) in a fresh folder with piece buffers
// of limit bytes, and returns the content's root folder.
func openBuffered(t *testing.T, limit int64) (*metainfo.Info, []byte, *Store, tstorage.TorrentImpl, string) {
	t.Helper()
	info, data := testTorrent(t)
	dir := t.TempDir()
	st, tor := openIn(t, dir, info, Options{BufferLimit: limit})
	return info, data, st, tor, filepath.Join(dir, "out", "top")
}

// openIn opens info's content in dir/out, its record in dir/state, with opts' limits; the test
// closes both at the end.
func openIn(t *testing.T, dir string, info *metainfo.Info, opts Options) (*Store, tstorage.TorrentImpl) {
	t.Helper()
	opts.Dir, opts.StateDir = filepath.Join(dir, "out"), filepath.Join(dir, "state")
	st, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tor, err := st.OpenTorrent(context.Background(), info, metainfo.HashBytes(info.Pieces))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tor.Close() })
	return st, tor
}

// writeBlocks writes bytes [from, to) of piece i from data in 4 KiB blocks, last block first.
func writeBlocks(t *testing.T, tor tstorage.TorrentImpl, info *metainfo.Info, data []byte, i int, from, to int64) {
	t.Helper()
	p := info.Piece(i)
	for hi := to; hi > from; {
		lo := max(from, (hi-1)&^(4<<10-1))
		if _, err := tor.Piece(p).WriteAt(data[p.Offset()+lo:p.Offset()+hi], lo); err != nil {
			t.Fatal(err)
		}
		hi = lo
	}
}

// hashed is what the library's hasher reads of piece i.
func hashed(t *testing.T, tor tstorage.TorrentImpl, info *metainfo.Info, i int) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := tor.Piece(info.Piece(i)).(io.WriterTo).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// oneFile is a torrent of one file, big.bin, of length random bytes in pieces of pieceLength.
func oneFile(pieceLength, length int64) (*metainfo.Info, []byte) {
	info := &metainfo.Info{Name: "big.bin", PieceLength: pieceLength, Length: length}
	data := make([]byte, length)
	rand.Read(data)
	for off := int64(0); off < length; off += pieceLength {
		h := sha1.Sum(data[off:min(off+pieceLength, length)])
		info.Pieces = append(info.Pieces, h[:]...)
	}
	return info, data
}

// completeAll writes every piece and marks it complete, as a finished download leaves them.
func completeAll(t *testing.T, tor tstorage.TorrentImpl, info *metainfo.Info, data []byte) {
	t.Helper()
	for i := range info.NumPieces() {
		writeBlocks(t, tor, info, data, i, 0, info.Piece(i).Length())
		if err := tor.Piece(info.Piece(i)).MarkComplete(); err != nil {
			t.Fatal(err)
		}
	}
}

// blockReader reads n bytes of piece p at an offset, as the library does for a peer.
func blockReader(t *testing.T, tor tstorage.TorrentImpl, p metainfo.Piece, n int) func(off int64) []byte {
	return func(off int64) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := tor.Piece(p).ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// partFile is what a.bin.part holds (nil when there is none).
func partFile(t *testing.T, root string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "a.bin.part"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return b
}

// TestBufferedPieceReachesDiskOnlyVerified: the blocks of a piece stay in memory until the
// piece is marked complete, the hasher reads them from memory, and a piece that failed its hash
// is never written.
func TestBufferedPieceReachesDiskOnlyVerified(t *testing.T) {
	info, data, st, tor, root := openBuffered(t, 0)
	p0 := info.Piece(0)
	want := data[:p0.Length()]

	// A bad copy of piece 0: hashed from memory, failed, marked not complete.
	bad := bytes.Clone(data)
	bad[100] ^= 1
	writeBlocks(t, tor, info, bad, 0, 0, p0.Length())
	if got := partFile(t, root); bytes.Count(got, []byte{0}) != len(got) {
		t.Fatalf("%d bytes of a piece not yet hashed are on the disk", len(got))
	}
	if got := hashed(t, tor, info, 0); !bytes.Equal(got, bad[:p0.Length()]) {
		t.Fatalf("hashing the buffered piece read %d bytes, not the blocks written", len(got))
	}
	if err := tor.Piece(p0).MarkNotComplete(); err != nil {
		t.Fatal(err)
	}
	if got := partFile(t, root); bytes.Count(got, []byte{0}) != len(got) {
		t.Fatalf("a piece that failed its hash was written to the disk")
	}

	// The honest copy, written over the bad one: complete, and only then on the disk.
	writeBlocks(t, tor, info, data, 0, 0, p0.Length())
	if got := hashed(t, tor, info, 0); sha1.Sum(got) != p0.V1Hash().Unwrap() {
		t.Fatal("the rewritten piece does not hash right")
	}
	if err := tor.Piece(p0).MarkComplete(); err != nil {
		t.Fatal(err)
	}
	if got := partFile(t, root); len(got) < len(want) || !bytes.Equal(got[:len(want)], want) {
		t.Fatal("piece 0 is not on the disk after MarkComplete")
	}
	if n := len(st.bufs.pieces()); n != 0 {
		t.Errorf("%d piece buffers left after the piece was written", n)
	}
	if hw := st.BufferHighWater(); hw != info.PieceLength {
		t.Errorf("buffers held %d bytes at most, want one piece (%d)", hw, info.PieceLength)
	}
	// Read back through the library's path, from the file now.
	got := make([]byte, p0.Length())
	if _, err := tor.Piece(p0).ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("reading the complete piece: %v", err)
	}
}

// TestPartlyBufferedPiece: a piece read while its buffer holds only part of it (the library's
// first check of a piece of unknown state overlapping the download, or a read) is read from the
// file with the buffered blocks written there first, and blocks written afterwards still make
// a whole piece.
func TestPartlyBufferedPiece(t *testing.T) {
	info, data, _, tor, root := openBuffered(t, 0)
	p := info.Piece(1)
	half := p.Length() / 2
	writeBlocks(t, tor, info, data, 1, 0, half)

	got := hashed(t, tor, info, 1)
	want := append(bytes.Clone(data[p.Offset():p.Offset()+half]), make([]byte, p.Length()-half)...)
	// (The library's file reader stops at the end of the file: the missing half may read short.)
	if int64(len(got)) < half || !bytes.Equal(got, want[:len(got)]) {
		t.Fatalf("a half-written piece read %d bytes, not its first half (and zeros)", len(got))
	}
	if f := partFile(t, root); int64(len(f)) < p.Offset()+half || !bytes.Equal(f[p.Offset():p.Offset()+half], data[p.Offset():p.Offset()+half]) {
		t.Fatal("the buffered half was not written to the file before the file was read")
	}

	// The other half arrives; a read of a buffered range comes from memory, one that is not
	// from the file, and the whole piece hashes right.
	writeBlocks(t, tor, info, data, 1, half, p.Length())
	b := make([]byte, 1000)
	if _, err := tor.Piece(p).ReadAt(b, half+10); err != nil || !bytes.Equal(b, data[p.Offset()+half+10:][:1000]) {
		t.Fatalf("reading buffered bytes: %v", err)
	}
	if got := hashed(t, tor, info, 1); sha1.Sum(got) != p.V1Hash().Unwrap() {
		t.Fatal("the piece written half before and half after a read does not hash right")
	}
	if err := tor.Piece(p).MarkComplete(); err != nil {
		t.Fatal(err)
	}
	if f := partFile(t, root); !bytes.Equal(f[p.Offset():p.Offset()+p.Length()], data[p.Offset():p.Offset()+p.Length()]) {
		t.Fatal("piece 1 on the disk differs")
	}
}

// TestBufferLimit: past the limit, blocks go straight to the files, and every piece still ends
// whole on the disk; the buffers never hold more than the limit.
func TestBufferLimit(t *testing.T) {
	info, data, st, tor, root := openBuffered(t, 2*16<<10)
	n := info.NumPieces()
	for i := range n {
		writeBlocks(t, tor, info, data, i, 0, info.Piece(i).Length())
	}
	if hw := st.BufferHighWater(); hw > 2*16<<10 {
		t.Errorf("buffers held %d bytes, over the limit", hw)
	}
	if got := len(st.bufs.pieces()); got != 2 {
		t.Errorf("%d pieces buffered, want 2 (the limit)", got)
	}
	for i := range n {
		p := info.Piece(i)
		if got := hashed(t, tor, info, i); sha1.Sum(got) != p.V1Hash().Unwrap() {
			t.Fatalf("piece %d does not hash right", i)
		}
		if err := tor.Piece(p).MarkComplete(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tor.Close(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(root, "a.bin"))
	b, _ := os.ReadFile(filepath.Join(root, "sub", "b.bin"))
	if !bytes.Equal(append(a, b...), data) {
		t.Fatal("the files on the disk differ from the content")
	}
}

// TestDirectPieceStaysDirect: a piece whose first blocks went to the file (the buffers were full)
// gets no buffer for its other blocks when one frees up: the hash would have had to write it
// out again first. Once hashed, it may be buffered again.
func TestDirectPieceStaysDirect(t *testing.T) {
	info, data, st, tor, _ := openBuffered(t, 16<<10) // one piece of 16 KiB
	writeBlocks(t, tor, info, data, 0, 8<<10, 16<<10) // piece 0 buffered
	writeBlocks(t, tor, info, data, 1, 8<<10, 16<<10) // piece 1 direct: the buffers are full
	writeBlocks(t, tor, info, data, 0, 0, 8<<10)
	if got := hashed(t, tor, info, 0); !bytes.Equal(got, data[:16<<10]) {
		t.Fatal("piece 0 does not read back right")
	}
	if err := tor.Piece(info.Piece(0)).MarkComplete(); err != nil { // frees the buffer
		t.Fatal(err)
	}
	writeBlocks(t, tor, info, data, 1, 0, 8<<10)
	if got := st.bufs.pieces(); len(got) != 0 {
		t.Fatalf("pieces %v have buffers, want none: piece 1 began on the file", got)
	}
	p1 := info.Piece(1)
	if got := hashed(t, tor, info, 1); !bytes.Equal(got, data[p1.Offset():][:p1.Length()]) {
		t.Fatal("piece 1 does not read back right")
	}
	// Hashed (say it failed): fetched again, it may have a buffer.
	writeBlocks(t, tor, info, data, 1, 0, 4<<10)
	if got := st.bufs.pieces(); !slices.Equal(got, []int{1}) {
		t.Fatalf("pieces %v have buffers, want piece 1 again once hashed", got)
	}
}

// TestCloseWritesUnverified: blocks of pieces not yet hashed are written to the part files when
// the torrent closes, so a later run can hash them instead of fetching them again.
func TestCloseWritesUnverified(t *testing.T) {
	info, data, _, tor, root := openBuffered(t, 0)
	p := info.Piece(0)
	writeBlocks(t, tor, info, data, 0, 0, p.Length())
	if err := tor.Close(); err != nil {
		t.Fatal(err)
	}
	if f := partFile(t, root); int64(len(f)) < p.Length() || !bytes.Equal(f[:p.Length()], data[:p.Length()]) {
		t.Fatal("the unverified piece was not written at close")
	}
}

// TestAbsentFilesKnownIncomplete: a piece in a file that is not on the disk is known
// incomplete, so the library does not hash it to find out; a piece in a file that is there is
// left for the library to check.
func TestAbsentFilesKnownIncomplete(t *testing.T) {
	info, data := testTorrent(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "out", "top")
	// a.bin (pieces 0-2) is there as a part file; sub/b.bin (pieces 2-5) is not.
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "a.bin.part"), data[:40<<10], 0o644); err != nil {
		t.Fatal(err)
	}
	_, tor := openIn(t, dir, info, Options{})
	for i := range info.NumPieces() {
		c := tor.Piece(info.Piece(i)).Completion()
		inB := info.Piece(i).Offset()+info.Piece(i).Length() > 40<<10
		if inB && (!c.Ok || c.Complete) {
			t.Errorf("piece %d (in the absent file): completion %+v, want known incomplete", i, c)
		}
		if !inB && c.Ok {
			t.Errorf("piece %d (in the file on disk): completion %+v, want unknown", i, c)
		}
	}
}

// TestCacheServesCompletePieces: the first block read of a complete piece reads the whole piece,
// and the other blocks come from memory (the file is changed behind the cache's back to tell);
// a piece marked not complete, or written, is read from the file again.
func TestCacheServesCompletePieces(t *testing.T) {
	info, data, _, tor, root := openBuffered(t, 0)
	completeAll(t, tor, info, data)
	p := info.Piece(1)
	read := blockReader(t, tor, p, 4<<10)
	if got := read(0); !bytes.Equal(got, data[p.Offset():][:4<<10]) {
		t.Fatal("first block of piece 1 differs")
	}
	// Piece 1 lies in a.bin (40 KiB, complete, so under its final name).
	f, err := os.OpenFile(filepath.Join(root, "a.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, int(p.Length())), p.Offset()); err != nil {
		t.Fatal(err)
	}
	if got := read(8 << 10); !bytes.Equal(got, data[p.Offset()+8<<10:][:4<<10]) {
		t.Fatal("a later block of the piece was read from the file again, not from the cache")
	}
	if err := tor.Piece(p).MarkNotComplete(); err != nil {
		t.Fatal(err)
	}
	if got := read(8 << 10); !bytes.Equal(got, bytes.Repeat([]byte{0xee}, 4<<10)) {
		t.Fatal("a piece marked not complete was still read from the cache")
	}
}

// TestCacheSegments: a complete piece longer than MaxCacheSegment is read one segment at a time,
// not whole: a block read loads its segment only (the file is changed behind the cache's back
// to tell), the next block of the segment comes from memory, a block of another segment from
// the file, and marking the piece not complete drops every segment of it.
func TestCacheSegments(t *testing.T) {
	info, data := oneFile(4*MaxCacheSegment, 8*MaxCacheSegment+12345)
	dir := t.TempDir()
	_, tor := openIn(t, dir, info, Options{})
	completeAll(t, tor, info, data)
	p := info.Piece(1)
	read := blockReader(t, tor, p, 16<<10)
	want := func(off int64) []byte { return data[p.Offset()+off:][:16<<10] }
	seg := int64(MaxCacheSegment)
	if !bytes.Equal(read(seg+32<<10), want(seg+32<<10)) { // loads segment 1 of piece 1
		t.Fatal("a block of piece 1 differs")
	}
	f, err := os.OpenFile(filepath.Join(dir, "out", "big.bin"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, int(p.Length())), p.Offset()); err != nil {
		t.Fatal(err)
	}
	changed := bytes.Repeat([]byte{0xee}, 16<<10)
	if !bytes.Equal(read(seg), want(seg)) || !bytes.Equal(read(2*seg-16<<10), want(2*seg-16<<10)) {
		t.Fatal("a later block of the segment was read from the file again, not from the cache")
	}
	if !bytes.Equal(read(0), changed) || !bytes.Equal(read(2*seg), changed) {
		t.Fatal("blocks of other segments came from the cache: the first read loaded more than its segment")
	}
	if err := tor.Piece(p).MarkNotComplete(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(seg), changed) || !bytes.Equal(read(2*seg), changed) {
		t.Fatal("a segment of a piece marked not complete was still read from the cache")
	}
}

// TestCacheConcurrentReaders: peers reading blocks of many complete pieces at once, through a
// cache that holds two pieces (so pieces are evicted and their buffers reused all the time),
// each get the bytes of the piece they asked for. Run with -race.
func TestCacheConcurrentReaders(t *testing.T) {
	info, data := testTorrent(t)
	t.Run("pieces", func(t *testing.T) { concurrentReaders(t, info, data, 2*info.PieceLength) })
	// Pieces of two segments each, two segments cached.
	big, bigData := oneFile(2*MaxCacheSegment, 5*MaxCacheSegment+4321)
	t.Run("segments", func(t *testing.T) { concurrentReaders(t, big, bigData, 2*MaxCacheSegment) })
}

func concurrentReaders(t *testing.T, info *metainfo.Info, data []byte, cacheLimit int64) {
	_, tor := openIn(t, t.TempDir(), info, Options{CacheLimit: cacheLimit})
	completeAll(t, tor, info, data)
	const readers, rounds = 6, 200
	errs := make(chan error, readers)
	for r := range readers {
		go func() {
			b := make([]byte, 2<<10)
			for k := range rounds {
				p := info.Piece((r + k) % info.NumPieces())
				off := int64(k*2<<10) * (p.Length()/(16<<10) | 1) % p.Length() // all over the piece
				n, err := tor.Piece(p).ReadAt(b[:min(int64(len(b)), p.Length()-off)], off)
				if err == nil && !bytes.Equal(b[:n], data[p.Offset()+off:][:n]) {
					err = fmt.Errorf("reader %d: piece %d at %d: wrong bytes", r, p.Index(), off)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
