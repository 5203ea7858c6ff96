package meta_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// testData returns n deterministic pseudo-random bytes; seed picks the stream.
func testData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5a0a1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeTree creates the files (slash-separated relative paths) under dir.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// pieceHashes is what a torrent's pieces string must be for data: the SHA-1 of each
// pieceLength-sized chunk, the last one shorter.
func pieceHashes(data []byte, pieceLength int) []byte {
	var out []byte
	for off := 0; off < len(data); off += pieceLength {
		end := min(off+pieceLength, len(data))
		h := sha1.Sum(data[off:end])
		out = append(out, h[:]...)
	}
	return out
}

// checkPieces fails the test unless info's pieces are the SHA-1 hashes of data.
func checkPieces(t *testing.T, info *metainfo.Info, data []byte) {
	t.Helper()
	if got := info.TotalLength(); got != int64(len(data)) {
		t.Fatalf("total length %d, want %d", got, len(data))
	}
	want := pieceHashes(data, int(info.PieceLength))
	if !bytes.Equal(info.Pieces, want) {
		t.Fatalf("pieces (%d bytes) are not the SHA-1 hashes of the data (%d bytes expected)", len(info.Pieces), len(want))
	}
}

// filePaths lists an info's files as slash-joined paths with their lengths.
func filePaths(info *metainfo.Info) []string {
	var out []string
	for _, f := range info.UpvertedFiles() {
		out = append(out, strings.Join(f.BestPath(), "/")+":"+strconv.FormatInt(f.Length, 10))
	}
	return out
}

// checkOneLine fails unless err is a single-line message that mentions every one of want.
func checkOneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", want)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error spans several lines: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func base32Of(h metainfo.Hash) string { return base32.StdEncoding.EncodeToString(h[:]) }
