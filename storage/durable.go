package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"

	g "github.com/anacrolix/generics"
	tstorage "github.com/anacrolix/torrent/storage"

	"github.com/anacrolix/torrent/metainfo"
)

// durable is the resume record with one rule added: a piece is written to the record as
// complete only after the files it lies in have been synced to disk. Without it a power cut
// could leave a record that says complete for bytes that were still in the page cache, and a
// restart would trust them.
//
// The library's record (bbolt behind a buffer) keeps a piece set complete in memory and
// writes it down at a checkpoint, about once a second and when the torrent closes. durable
// passes the library's Checkpoint through only after syncing the files of the pieces in it,
// and at Close syncs what is left before the buffer writes it down.
type durable struct {
	inner tstorage.PieceCompletion // buffered (a PieceCompletionCheckpointer), or writes at once
	sync  func(path string) error

	mu      sync.Mutex
	files   func(piece int) []string // the paths a piece lies in; nil until OpenTorrent
	pending map[metainfo.PieceKey]struct{}
	synced  map[string]bool // folders synced once, so a new file's name survives too
}

var _ interface {
	tstorage.PieceCompletion
	tstorage.PieceCompletionCheckpointer
	tstorage.PieceCompletionPersistenter
} = (*durable)(nil)

func newDurable(inner tstorage.PieceCompletion, sync func(string) error) *durable {
	if sync == nil {
		sync = syncPath
	}
	return &durable{inner: inner, sync: sync, pending: map[metainfo.PieceKey]struct{}{}, synced: map[string]bool{}}
}

// layout tells durable where each piece's bytes are: the file or files (part file, or final
// name once promoted) that the piece spans.
func (d *durable) layout(files func(piece int) []string) {
	d.mu.Lock()
	d.files = files
	d.mu.Unlock()
}

func (d *durable) Persistent() bool { return true }

func (d *durable) Get(pk metainfo.PieceKey) (tstorage.Completion, error) { return d.inner.Get(pk) }

func (d *durable) Set(pk metainfo.PieceKey, complete g.Option[bool]) error {
	if _, ok := d.inner.(tstorage.PieceCompletionCheckpointer); !ok && complete.Ok && complete.Value {
		// A record that writes at once: sync first.
		if _, err := d.syncPieces([]metainfo.PieceKey{pk}); err != nil {
			return err
		}
		return d.inner.Set(pk, complete)
	}
	d.mu.Lock()
	if complete.Ok && complete.Value {
		d.pending[pk] = struct{}{}
	} else {
		delete(d.pending, pk)
	}
	d.mu.Unlock()
	return d.inner.Set(pk, complete)
}

// Checkpoint syncs the files the pieces lie in, then lets the record write down those whose
// files synced. A piece whose file failed to sync is not written down: it stays complete in
// memory and is tried again at the next checkpoint.
func (d *durable) Checkpoint(keys []metainfo.PieceKey) error {
	ok, err := d.syncPieces(keys)
	if c, is := d.inner.(tstorage.PieceCompletionCheckpointer); is && len(ok) > 0 {
		if cerr := c.Checkpoint(ok); cerr != nil {
			return errors.Join(err, cerr)
		}
	}
	d.mu.Lock()
	for _, k := range ok {
		delete(d.pending, k)
	}
	d.mu.Unlock()
	return err
}

// Close syncs the pieces not yet checkpointed, and closes the record, which writes them
// down. Pieces whose files cannot be synced are forgotten rather than written down.
func (d *durable) Close() error {
	d.mu.Lock()
	keys := make([]metainfo.PieceKey, 0, len(d.pending))
	for k := range d.pending {
		keys = append(keys, k)
	}
	d.mu.Unlock()
	err := d.Checkpoint(keys)
	d.mu.Lock()
	left := make([]metainfo.PieceKey, 0, len(d.pending))
	for k := range d.pending {
		left = append(left, k)
	}
	d.mu.Unlock()
	for _, k := range left {
		// Unknown, not incomplete: the next start hashes them (the bytes may well be there).
		err = errors.Join(err, d.inner.Set(k, g.None[bool]()))
	}
	return errors.Join(err, d.inner.Close())
}

// syncPieces syncs the files of each piece and returns the pieces whose files all synced.
func (d *durable) syncPieces(keys []metainfo.PieceKey) (ok []metainfo.PieceKey, err error) {
	d.mu.Lock()
	files := d.files
	d.mu.Unlock()
	if len(keys) == 0 {
		return nil, nil
	}
	if files == nil {
		return nil, errors.New("resume record: piece completed before the torrent's files were known")
	}
	failed := map[string]bool{}
	seen := map[string]bool{}
	for _, k := range keys {
		good := true
		for _, p := range files(k.Index) {
			if !seen[p] {
				seen[p] = true
				if serr := d.syncFile(p); serr != nil {
					failed[p] = true
					err = errors.Join(err, serr)
				}
			}
			good = good && !failed[p]
		}
		if good {
			ok = append(ok, k)
		}
	}
	return ok, err
}

// syncFile syncs the part file, or the final file when the part file has been promoted, and
// the first time also the folder that holds it.
func (d *durable) syncFile(final string) error {
	p := final + ".part"
	err := d.sync(p)
	if errors.Is(err, fs.ErrNotExist) {
		p = final
		err = d.sync(p)
	}
	if err != nil {
		return fmt.Errorf("syncing %s before recording its pieces: %w", p, err)
	}
	dir := filepath.Dir(p)
	d.mu.Lock()
	done := d.synced[dir]
	d.mu.Unlock()
	if done {
		return nil
	}
	if err := d.sync(dir); err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	d.mu.Lock()
	d.synced[dir] = true
	d.mu.Unlock()
	return nil
}

// syncPath flushes a file's (or a folder's) data to the disk.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// pieceFiles maps each piece to the on-disk paths (final names) of the files it lies in.
func pieceFiles(info *metainfo.Info, root string) func(piece int) []string {
	type span struct {
		off, end int64
		path     string
	}
	var spans []span
	var off int64
	for _, f := range info.UpvertedFiles() {
		if f.Length > 0 {
			spans = append(spans, span{off, off + f.Length, filepath.Join(append([]string{root}, f.BestPath()...)...)})
		}
		off += f.Length
	}
	return func(piece int) []string {
		p := info.Piece(piece)
		begin, end := p.Offset(), p.Offset()+p.Length()
		var out []string
		// The first file that ends after the piece begins, then each that begins before it ends.
		k, _ := slices.BinarySearchFunc(spans, begin, func(s span, begin int64) int { return cmp.Compare(s.end, begin+1) })
		for ; k < len(spans) && spans[k].off < end; k++ {
			out = append(out, spans[k].path)
		}
		return out
	}
}
