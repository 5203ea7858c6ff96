package meta_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/storage"
)

// The limits too large for a committed fixture: each .torrent is built here, tens of MB.

// singleWithPieces is a one-file torrent of n pieces of 16 KiB, its hashes all zero.
func singleWithPieces(n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "d4:infod6:lengthi%de4:name4:huge12:piece lengthi16384e6:pieces%d:", int64(n)*16384, 20*n)
	b.Write(make([]byte, 20*n))
	b.WriteString("ee")
	return b.Bytes()
}

// manyFiles is a folder torrent of n one-byte files.
func manyFiles(n int) []byte {
	var b bytes.Buffer
	b.WriteString("d4:infod5:filesl")
	var num []byte
	for i := range n {
		num = strconv.AppendInt(num[:0], int64(i), 10)
		b.WriteString("d6:lengthi1e4:pathl")
		b.WriteString(strconv.Itoa(len(num)))
		b.WriteByte(':')
		b.Write(num)
		b.WriteString("ee")
	}
	pieces := (n + 16383) / 16384
	fmt.Fprintf(&b, "e4:name4:many12:piece lengthi16384e6:pieces%d:", 20*pieces)
	b.Write(make([]byte, 20*pieces))
	b.WriteString("ee")
	return b.Bytes()
}

func TestMaxPieces(t *testing.T) {
	s, err := meta.ParseTorrent(singleWithPieces(meta.MaxPieces))
	if err != nil {
		t.Fatalf("%d pieces, the most allowed: %v", meta.MaxPieces, err)
	}
	if s.Info.NumPieces() != meta.MaxPieces {
		t.Fatalf("%d pieces", s.Info.NumPieces())
	}
	_, err = meta.ParseTorrent(singleWithPieces(meta.MaxPieces + 1))
	checkOneLine(t, err, "1048577 piece hashes, more than the 1048576 allowed")
}

func TestMaxFiles(t *testing.T) {
	b := manyFiles(storage.MaxFiles + 1)
	_, err := meta.ParseTorrent(b)
	checkOneLine(t, err, "more than 524288 files")
	// The same info dictionary as peers send it for a magnet link.
	_, err = meta.ParseInfo(b[len("d4:info") : len(b)-1])
	checkOneLine(t, err, "more than 524288 files")
	// A million, as the issue asks: counted in the file's bytes before any decoding. Decoded,
	// the list cost 1.3 GB and 3.8 s (3 GB before storage.CheckInfo counted first); counted
	// after the top-level decode, 176 MB; counted first, under 1 MB and 0.2 s.
	b = manyFiles(1_000_000)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = meta.ParseTorrent(b)
	runtime.ReadMemStats(&after)
	checkOneLine(t, err, "more than 524288 files")
	// Cut short, it is counted as far as it goes (the decoder would work through it all).
	_, err2 := meta.ParseTorrent(b[:len(b)-2])
	checkOneLine(t, err2, "more than 524288 files")
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(b)) {
		t.Errorf("refusing a %d MB torrent of a million files allocated %d MB", len(b)>>20, alloc>>20)
	} else {
		t.Logf("refusing a %d MB torrent of a million files allocated %d MB", len(b)>>20, alloc>>20)
	}
}

func TestMaxTorrentFileSize(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		size int
		want string
	}{
		// The file is refused by its size alone, before it is decoded.
		{"over.torrent", meta.MaxTorrentFileSize + 1, "larger than 32 MiB"},
		// At the limit it is read and decoded (and refused for what it holds).
		{"at.torrent", meta.MaxTorrentFileSize, "malformed .torrent"},
	} {
		p := filepath.Join(dir, c.name)
		b := append([]byte("d1:x"), bytes.Repeat([]byte("l"), c.size-4)...)
		copy(b[len(b)-3:], "0:e") // "d1:x" + "lll...l0:e": deep nesting, caught by the decoder
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := meta.LoadFile(p)
		checkOneLine(t, err, p+": ", c.want)
	}
}
