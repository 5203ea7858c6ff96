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

// piece is the library's file piece with one change: marking a piece not complete does not
// "restore the part file" while the file has no final name yet.
//
// The library's MarkNotComplete records the piece incomplete and then renames each of its
// files from the final name back to NAME.part. Before a file is complete there is nothing to
// rename, but the rename closes the cached writer of NAME.part all the same, while other
// goroutines are writing blocks and hashing pieces through it: they fail with "file already
// closed". With plain file IO (no memory maps, see Open) that happened in most fast
// downloads: the library's first check of pieces of unknown state, and every piece that then
// failed for that reason, closed the writer under the download; pieces failed their hash and
// were fetched again, and a block write that failed ended the download.
type piece struct {
	tstorage.PieceImpl
	pc     tstorage.PieceCompletion
	key    metainfo.PieceKey
	length int64
	files  func(piece int) []string // final paths of the files the piece lies in
}

func (p piece) MarkNotComplete() error {
	for _, f := range p.files(p.key.Index) {
		if _, err := os.Lstat(f); !errors.Is(err, fs.ErrNotExist) {
			return p.PieceImpl.MarkNotComplete() // a file at its final name: the library's way
		}
	}
	return p.pc.Set(p.key, g.Some(false))
}

// WriteTo hashes the piece the library's way (it reads each file's extent in one go).
func (p piece) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := p.PieceImpl.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, io.NewSectionReader(p.PieceImpl, 0, p.length))
}
