package storage

import (
	"context"
	"crypto/sha1"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// TestMarkNotCompleteKeepsWriter: marking a piece not complete while its file is still a
// part file leaves the file's writer open, so the blocks and hashes in flight for the other
// pieces of that file go on (the library's own MarkNotComplete closed it: "file already
// closed"); once the file has its final name, the piece is marked the library's way and the
// file goes back to NAME.part.
func TestMarkNotCompleteKeepsWriter(t *testing.T) {
	info, data := testTorrent(t)
	dir := t.TempDir()
	// Blocks straight to the file (as when the piece buffers are full): the path the fix is for.
	st, err := Open(Options{Dir: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "state"), BufferLimit: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tor, err := st.OpenTorrent(context.Background(), info, metainfo.HashBytes(info.Pieces))
	if err != nil {
		t.Fatal(err)
	}
	defer tor.Close()
	piece := func(i int) (metainfo.Piece, []byte) {
		p := info.Piece(i)
		return p, data[p.Offset() : p.Offset()+p.Length()]
	}

	// Blocks of piece 0 written and the piece hashed over and over while piece 1 is marked
	// not complete over and over, as the library does when its first check of pieces of
	// unknown state overlaps the download.
	p0, b0 := piece(0)
	const rounds = 2000
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for range rounds {
			for off := 0; off < len(b0); off += 1 << 10 {
				if _, err := tor.Piece(p0).WriteAt(b0[off:off+1<<10], int64(off)); err != nil {
					errs <- fmt.Errorf("writing a block of piece 0: %w", err)
					return
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range rounds {
			if _, err := tor.Piece(p0).(io.WriterTo).WriteTo(io.Discard); err != nil {
				errs <- fmt.Errorf("hashing piece 0: %w", err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range rounds {
			if err := tor.Piece(info.Piece(1)).MarkNotComplete(); err != nil {
				errs <- fmt.Errorf("marking piece 1 not complete: %w", err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	h := sha1.New()
	if _, err := tor.Piece(p0).(io.WriterTo).WriteTo(h); err != nil {
		t.Fatalf("hashing piece 0: %v", err)
	}
	if string(h.Sum(nil)) != string(p0.V1Hash().Unwrap().Bytes()) {
		t.Fatal("piece 0 does not hash right")
	}
	if c := tor.Piece(info.Piece(1)).Completion(); c.Ok && c.Complete {
		t.Error("piece 1 is recorded complete")
	}

	// a.bin lies in pieces 0 to 2: once they are complete it has its final name, and marking
	// piece 1 not complete puts it back to a.bin.part.
	a := filepath.Join(st.Root(info), "a.bin")
	for i := range 3 {
		p, b := piece(i)
		pi := tor.Piece(p)
		if _, err := pi.WriteAt(b, 0); err != nil {
			t.Fatal(err)
		}
		if err := pi.MarkComplete(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(a); err != nil {
		t.Fatalf("a.bin complete but not at its final name: %v", err)
	}
	if err := tor.Piece(info.Piece(1)).MarkNotComplete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a + ".part"); err != nil {
		t.Errorf("a.bin not back to a.bin.part after a piece of it was marked not complete: %v", err)
	}
}
