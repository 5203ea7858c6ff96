package storage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tstorage "github.com/anacrolix/torrent/storage"

	"github.com/anacrolix/torrent/metainfo"
)

// disk stands for what a power cut leaves: a file's bytes as they were at its last sync,
// nothing written since. It records every sync the storage asks for.
type disk struct {
	mu     sync.Mutex
	synced map[string][]byte // by final name (a part file and its promoted name are one file)
	fail   string            // syncing a path containing this fails
}

func (d *disk) sync(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if d.fail != "" && strings.Contains(path, d.fail) {
		return errors.New("injected I/O error")
	}
	if fi.IsDir() {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.synced[strings.TrimSuffix(path, ".part")] = b
	d.mu.Unlock()
	return nil
}

// watch wraps the resume record: each time pieces are written down as complete, their bytes
// must already be in the last sync of their files, as a power cut at that moment would leave.
type watch struct {
	tstorage.PieceCompletion
	t    *testing.T
	disk *disk
	root string
	info *metainfo.Info
	data []byte
}

func (w *watch) Checkpoint(keys []metainfo.PieceKey) error {
	for _, k := range keys {
		p := w.info.Piece(k.Index)
		if !bytes.Equal(w.disk.piece(w.root, w.info, k.Index), w.data[p.Offset():p.Offset()+p.Length()]) {
			w.t.Errorf("piece %d written to the record as complete before its bytes were synced", k.Index)
		}
	}
	return w.PieceCompletion.(tstorage.PieceCompletionCheckpointer).Checkpoint(keys)
}

func (w *watch) Persistent() bool { return true }

// piece is piece i as the synced bytes hold it (zeros where nothing was synced).
func (d *disk) piece(root string, info *metainfo.Info, i int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := info.Piece(i)
	out := make([]byte, 0, p.Length())
	var off int64
	for _, f := range info.UpvertedFiles() {
		begin, end := max(p.Offset(), off), min(p.Offset()+p.Length(), off+f.Length)
		if begin < end {
			b := d.synced[filepath.Join(append([]string{root}, f.BestPath()...)...)]
			for o := begin - off; o < end-off; o++ {
				if o < int64(len(b)) {
					out = append(out, b[o])
				} else {
					out = append(out, 0)
				}
			}
		}
		off += f.Length
	}
	return out
}

// cut replaces each file's bytes by those of its last sync, or by zeros when it was never
// synced (its length, being metadata, may have reached the disk).
func (d *disk) cut(t *testing.T, finals []string) {
	t.Helper()
	for _, final := range finals {
		path := final + ".part"
		fi, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			path = final
			fi, err = os.Stat(path)
		}
		if err != nil {
			t.Fatal(err)
		}
		b, ok := d.synced[final]
		if !ok {
			b = make([]byte, fi.Size())
		}
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testTorrent is a torrent of two files whose pieces straddle the boundary between them.
func testTorrent(t *testing.T) (*metainfo.Info, []byte) {
	t.Helper()
	info := &metainfo.Info{Name: "top", PieceLength: 16 << 10, Files: []metainfo.FileInfo{
		{Path: []string{"a.bin"}, Length: 40 << 10},
		{Path: []string{"sub", "b.bin"}, Length: 50<<10 + 123},
	}}
	data := make([]byte, info.TotalLength())
	rand.Read(data)
	for off := 0; off < len(data); off += int(info.PieceLength) {
		h := sha1.Sum(data[off:min(off+int(info.PieceLength), len(data))])
		info.Pieces = append(info.Pieces, h[:]...)
	}
	return info, data
}

// download writes the pieces for which write says so and marks them complete, as the torrent
// library does once a piece's hash matches, then closes the torrent and the store (which is
// when the record is written down).
func download(t *testing.T, opts Options, info *metainfo.Info, data []byte, write func(int) bool) {
	t.Helper()
	st, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	tor, err := st.OpenTorrent(context.Background(), info, metainfo.HashBytes(info.Pieces))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	for i := range info.NumPieces() {
		if !write(i) {
			continue
		}
		p := info.Piece(i)
		pi := tor.Piece(p)
		if _, err := pi.WriteAt(data[p.Offset():p.Offset()+p.Length()], 0); err != nil {
			t.Fatal(err)
		}
		if err := pi.MarkComplete(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tor.Close(); err != nil {
		t.Logf("closing the torrent: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Logf("closing the store: %v", err)
	}
}

// recorded lists the pieces the resume record in dir holds as complete.
func recorded(t *testing.T, dir string, info *metainfo.Info) []int {
	t.Helper()
	pc, err := tstorage.NewBoltPieceCompletion(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var out []int
	for i := range info.NumPieces() {
		c, err := pc.Get(metainfo.PieceKey{InfoHash: metainfo.HashBytes(info.Pieces), Index: i})
		if err != nil {
			t.Fatal(err)
		}
		if c.Ok && c.Complete {
			out = append(out, i)
		}
	}
	return out
}

// readPiece reads piece i back from the files on disk (part files or final names).
func readPiece(t *testing.T, root string, info *metainfo.Info, i int) []byte {
	t.Helper()
	p := info.Piece(i)
	var out []byte
	var off int64
	for _, f := range info.UpvertedFiles() {
		begin, end := max(p.Offset(), off), min(p.Offset()+p.Length(), off+f.Length)
		if begin < end {
			final := filepath.Join(append([]string{root}, f.BestPath()...)...)
			b, err := os.ReadFile(final + ".part")
			if errors.Is(err, fs.ErrNotExist) {
				b, err = os.ReadFile(final)
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b[begin-off:end-off]...)
		}
		off += f.Length
	}
	return out
}

func finals(root string, info *metainfo.Info) []string {
	var out []string
	for _, f := range info.UpvertedFiles() {
		out = append(out, filepath.Join(append([]string{root}, f.BestPath()...)...))
	}
	return out
}

// A power cut never leaves a piece recorded complete whose bytes are not on the disk: the
// store syncs a piece's files before the record says complete. Checked at each write of the
// record (watch), and after a cut once part of the torrent is done (part files) and once all
// of it is (files promoted).
func TestPowerCutRecordsOnlySyncedPieces(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(int) bool
	}{
		{"partial", func(i int) bool { return i%3 != 1 }},
		{"whole", func(int) bool { return true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			base := t.TempDir()
			info, data := testTorrent(t)
			d := &disk{synced: map[string][]byte{}}
			opts := Options{Dir: filepath.Join(base, "dl"), StateDir: filepath.Join(base, "state"), sync: d.sync}
			root := filepath.Join(opts.Dir, info.BestName())
			opts.record = func(pc tstorage.PieceCompletion) tstorage.PieceCompletion {
				return &watch{PieceCompletion: pc, t: t, disk: d, root: root, info: info, data: data}
			}
			download(t, opts, info, data, c.write)
			d.cut(t, finals(root, info))

			got := recorded(t, opts.StateDir, info)
			if len(got) == 0 {
				t.Fatal("no piece recorded complete")
			}
			for _, i := range got {
				p := info.Piece(i)
				if !c.write(i) {
					t.Errorf("piece %d recorded complete but never written", i)
				} else if !bytes.Equal(readPiece(t, root, info, i), data[p.Offset():p.Offset()+p.Length()]) {
					t.Errorf("piece %d recorded complete, but after the power cut its bytes are not on the disk", i)
				}
			}
		})
	}
}

// A piece whose file cannot be synced is not recorded complete (it is hashed again on the
// next start instead).
func TestUnsyncedPieceNotRecorded(t *testing.T) {
	base := t.TempDir()
	info, data := testTorrent(t)
	d := &disk{synced: map[string][]byte{}, fail: "b.bin"}
	opts := Options{Dir: filepath.Join(base, "dl"), StateDir: filepath.Join(base, "state"), sync: d.sync}
	download(t, opts, info, data, func(int) bool { return true })
	got := recorded(t, opts.StateDir, info)
	// Pieces 0 and 1 lie in a.bin alone; every later piece touches b.bin.
	if len(got) != 2 || got[0] != 0 || got[1] != 1 {
		t.Fatalf("recorded complete: %v, want [0 1] (the pieces in b.bin could not be synced)", got)
	}
}
