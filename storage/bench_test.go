package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"io"
	"path/filepath"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
)

// BenchmarkPieces is the leecher's storage path for one 64 MiB file in 256 KiB pieces, as the
// torrent library drives it: every 16 KiB block written, each piece hashed (SHA-1 of what
// WriteTo hands over) and marked complete, and the record closed. "buffered" is shoal's way
// (blocks in memory until the piece is hashed), "direct" writes every block to the file and
// reads the piece back to hash it (the library's way, and shoal's once the buffers are full).
//
//	go test -run '^$' -bench Pieces -count 6 ./storage | benchstat -col /mode -
func BenchmarkPieces(b *testing.B) {
	const size, pieceLen, block = 64 << 20, 256 << 10, 16 << 10
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	info := &metainfo.Info{Name: "bench.bin", PieceLength: pieceLen, Length: size}
	for off := 0; off < size; off += pieceLen {
		h := sha1.Sum(data[off : off+pieceLen])
		info.Pieces = append(info.Pieces, h[:]...)
	}
	for _, mode := range []struct {
		name  string
		limit int64
	}{{"mode=buffered", 0}, {"mode=direct", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			b.SetBytes(size)
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				st, err := Open(Options{Dir: filepath.Join(dir, "out"), StateDir: filepath.Join(dir, "state"), BufferLimit: mode.limit})
				if err != nil {
					b.Fatal(err)
				}
				tor, err := st.OpenTorrent(context.Background(), info, metainfo.HashBytes(info.Pieces))
				if err != nil {
					b.Fatal(err)
				}
				for p := range info.NumPieces() {
					mp := info.Piece(p)
					pi := tor.Piece(mp)
					for off := int64(0); off < pieceLen; off += block {
						if _, err := pi.WriteAt(data[mp.Offset()+off:][:block], off); err != nil {
							b.Fatal(err)
						}
					}
					h := sha1.New()
					if _, err := pi.(io.WriterTo).WriteTo(h); err != nil {
						b.Fatal(err)
					}
					if string(h.Sum(nil)) != string(mp.V1Hash().Unwrap().Bytes()) {
						b.Fatalf("piece %d hashed wrong", p)
					}
					if err := pi.MarkComplete(); err != nil {
						b.Fatal(err)
					}
				}
				if err := tor.Close(); err != nil {
					b.Fatal(err)
				}
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
