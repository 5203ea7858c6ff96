// Package storage decides where a torrent's data lives on disk: the files in the download
// folder, safe file names, and the piece-completion records in the data dir that let a
// download killed halfway resume with the pieces it had verified.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	g "github.com/anacrolix/generics"
	tstorage "github.com/anacrolix/torrent/storage"
	"go.etcd.io/bbolt"

	"github.com/anacrolix/torrent/metainfo"
)

// Options says where one torrent's files go and where its resume state is kept.
type Options struct {
	// Dir is the folder the torrent's content goes in: a single-file torrent becomes
	// Dir/Name, a folder torrent Dir/Name/<paths>.
	Dir string
	// Name replaces the torrent's own name on disk when not empty (seeding a path whose
	// base name differs from the name in the .torrent).
	Name string
	// StateDir holds the piece-completion record. Empty means completion is kept in memory
	// only, and the data is re-hashed on every start (what a seeder does anyway).
	StateDir string
	// Complete says the content is expected in place and whole: no part files are used, so
	// nothing beside the user's files is ever created.
	Complete bool
	// Hashed says the content was hashed into this torrent a moment ago (the torrent was just
	// made from it): every piece is recorded complete without hashing it again. Only with
	// Complete and no StateDir.
	Hashed bool
	// BufferLimit is how many bytes of received, not yet verified pieces are kept in memory
	// (see buffers): 0 means DefaultBufferLimit, a negative value writes every block to the
	// files as it comes.
	BufferLimit int64
	// CacheLimit is how many bytes of complete pieces are kept in memory for peers reading
	// them (see cache): 0 means DefaultCacheLimit, a negative value reads every block from the
	// files.
	CacheLimit int64
	// WriteFailed, when set, is told when a verified piece cannot be written to its file (the
	// library only logs it).
	WriteFailed func(error)
	Logger      *slog.Logger

	// sync flushes one file or folder to the disk before pieces in it are recorded complete
	// (syncPath); tests put a recorder here.
	sync func(path string) error
	// record, when set, wraps the library's resume record (tests watch its writes).
	record func(tstorage.PieceCompletion) tstorage.PieceCompletion
}

// Store is one torrent's storage. It implements the torrent library's storage.ClientImpl;
// Close it after the torrent client has closed.
type Store struct {
	tstorage.ClientImplCloser
	opts    Options
	resumed bool
	damaged bool
	pc      tstorage.PieceCompletion
	bufs    *buffers // the open torrent's piece buffers; nil before OpenTorrent
}

// boltFile is the resume record's file name in StateDir (the torrent library's choice).
const boltFile = ".torrent.bolt.db"

// Resumed says a resume record for this torrent was there before Open: the files in place
// were written by an earlier run.
func (s *Store) Resumed() bool { return s.resumed }

// Damaged says the resume record could not be read (it was set aside as NAME.damaged and a
// new one begun): nothing it said can be trusted, so the data on disk must be hashed.
func (s *Store) Damaged() bool { return s.damaged }

// Open prepares the storage for one torrent. The files themselves are opened when the torrent
// library asks, after CheckInfo has passed.
func Open(opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("download folder: %w", err)
	}
	var pc tstorage.PieceCompletion
	resumed, damaged := false, false
	if opts.StateDir == "" {
		pc = tstorage.NewMapPieceCompletion()
	} else {
		_, err := os.Stat(opts.StateDir)
		resumed = err == nil
		if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("state folder: %w", err)
		}
		bolt, err := tstorage.NewBoltPieceCompletion(opts.StateDir)
		if err != nil && !errors.Is(err, bbolt.ErrTimeout) {
			// A record damaged (a power cut while it was written): set it aside and start a
			// new one; the files on disk are hashed instead of trusted.
			db := filepath.Join(opts.StateDir, boltFile)
			opts.Logger.Warn("resume record damaged, hashing the data on disk instead", "record", db, "err", err)
			if rerr := os.Rename(db, db+".damaged"); rerr != nil {
				return nil, fmt.Errorf("resume record %s is damaged (%v) and cannot be set aside: %w", db, err, rerr)
			}
			damaged = true
			bolt, err = tstorage.NewBoltPieceCompletion(opts.StateDir)
		}
		if err != nil {
			return nil, fmt.Errorf("opening resume state in %s (is another shoal using it?): %w", opts.StateDir, err)
		}
		if opts.record != nil {
			bolt = opts.record(bolt)
		}
		// A piece is recorded complete only once its bytes are on the disk.
		pc = newDurable(bolt, opts.sync)
	}
	name := opts.Name
	impl := tstorage.NewFileOpts(tstorage.NewFileClientOpts{
		ClientBaseDir:   opts.Dir,
		PieceCompletion: pc,
		UsePartFiles:    g.Some(!opts.Complete),
		// Plain reads and writes, not memory maps: reading a mapped file that a full tmpfs
		// cannot back, or that something else truncated, kills the process with SIGBUS.
		DisableMmap: true,
		Logger:      opts.Logger,
		FilePathMaker: func(o tstorage.FilePathMakerOpts) string {
			n := name
			if n == "" {
				n = o.Info.BestName()
			}
			return filepath.Join(append([]string{n}, o.File.BestPath()...)...)
		},
	})
	return &Store{ClientImplCloser: impl, opts: opts, resumed: resumed, damaged: damaged, pc: pc}, nil
}

// OpenTorrent checks the torrent's file names before the library creates any file.
func (s *Store) OpenTorrent(ctx context.Context, info *metainfo.Info, ih metainfo.Hash) (tstorage.TorrentImpl, error) {
	if err := CheckInfo(info); err != nil {
		return tstorage.TorrentImpl{}, err
	}
	files := pieceFiles(info, s.Root(info))
	if d, ok := s.pc.(*durable); ok {
		d.layout(files)
	}
	if s.opts.Hashed && s.opts.Complete && s.opts.StateDir == "" {
		for i := range info.NumPieces() {
			if err := s.pc.Set(metainfo.PieceKey{InfoHash: ih, Index: i}, g.Some(true)); err != nil {
				return tstorage.TorrentImpl{}, err
			}
		}
	}
	bufs := newBuffers(limitOr(s.opts.BufferLimit, DefaultBufferLimit), info.PieceLength)
	s.bufs = bufs
	set := &pieceSet{
		pc: s.pc, files: files, bufs: bufs, absent: s.absentPieces(info, files), failed: s.opts.WriteFailed,
		cache: newCache(limitOr(s.opts.CacheLimit, DefaultCacheLimit), info.PieceLength),
	}
	t, err := s.ClientImplCloser.OpenTorrent(ctx, info, ih)
	if err != nil || t.Piece == nil || t.PieceWithHash != nil {
		return t, err
	}
	inner, closeInner := t.Piece, t.Close
	// The library calls this for every block read or written: it only wraps.
	t.Piece = func(p metainfo.Piece) tstorage.PieceImpl {
		return piece{PieceImpl: inner(p), pieceSet: set, key: metainfo.PieceKey{InfoHash: ih, Index: p.Index()}, length: p.Length()}
	}
	t.Close = func() error {
		// Blocks of pieces not yet verified go to the part files, as the library would have
		// written them: a later run hashes them instead of fetching them again.
		for _, i := range bufs.pieces() {
			if p, ok := t.Piece(info.Piece(i)).(piece); ok {
				if c := p.PieceImpl.Completion(); !c.Ok || !c.Complete {
					if err := p.flush(false); err != nil {
						// Unverified bytes: losing them costs fetching them again, no more.
						s.opts.Logger.Debug("unverified blocks not written at close", "piece", i, "err", err)
					}
				}
			}
		}
		if closeInner == nil {
			return nil
		}
		return closeInner()
	}
	return t, nil
}

// limitOr is a byte limit from Options: 0 means def, a negative value none (0).
func limitOr(v, def int64) int64 {
	if v == 0 {
		return def
	}
	return max(v, 0)
}

// Close closes the resume record; the torrent library must have closed the torrent.
func (s *Store) Close() error {
	if s.bufs != nil {
		s.opts.Logger.Debug("piece buffers", "high_water", s.bufs.highWater(), "limit", s.bufs.limit)
	}
	return s.ClientImplCloser.Close()
}

// BufferHighWater is the most bytes the open torrent's piece buffers held at once.
func (s *Store) BufferHighWater() int64 {
	if s.bufs == nil {
		return 0
	}
	return s.bufs.highWater()
}

// Unwritten lists the pieces that passed their hash but could not be written to their files
// (a full disk): the torrent library counts them complete, but they are not on the disk.
func (s *Store) Unwritten() []int {
	if s.bufs == nil {
		return nil
	}
	return s.bufs.unwrittenPieces()
}

// absentPieces says which pieces lie in a file that is on disk under neither its final name
// nor NAME.part (see OnDisk): such a piece cannot be complete. When the disk cannot be read,
// none is said absent (the library then hashes to find out).
func (s *Store) absentPieces(info *metainfo.Info, files func(int) []string) func(piece int) bool {
	final, partial, err := s.OnDisk(info)
	if err != nil {
		return func(int) bool { return false }
	}
	present := map[string]bool{}
	for _, p := range final {
		present[p] = true
	}
	for _, p := range partial {
		present[strings.TrimSuffix(p, ".part")] = true
	}
	root := s.Root(info)
	missing := map[string]bool{}
	for _, f := range info.UpvertedFiles() {
		if p := filepath.Join(append([]string{root}, f.BestPath()...)...); !present[p] {
			missing[p] = true
		}
	}
	return func(i int) bool {
		if len(missing) == 0 {
			return false
		}
		for _, f := range files(i) {
			if missing[f] {
				return true
			}
		}
		return false
	}
}

// Root is the path of the torrent's content: the single file, or the top folder.
func (s *Store) Root(info *metainfo.Info) string {
	n := s.opts.Name
	if n == "" {
		n = info.BestName()
	}
	return filepath.Join(s.opts.Dir, n)
}

// OnDisk lists the torrent's files already on disk, whole (at their final path) or partial
// (as NAME.part, which the download writes until the file completes).
func (s *Store) OnDisk(info *metainfo.Info) (final, partial []string, err error) {
	root := s.Root(info)
	for _, f := range info.UpvertedFiles() {
		p := filepath.Join(append([]string{root}, f.BestPath()...)...)
		for _, c := range []struct {
			path string
			list *[]string
		}{{p, &final}, {p + ".part", &partial}} {
			if _, err := os.Lstat(c.path); err == nil {
				*c.list = append(*c.list, c.path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, nil, err
			}
		}
	}
	return final, partial, nil
}
