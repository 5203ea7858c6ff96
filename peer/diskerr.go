package peer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/anacrolix/torrent/metainfo"
	bbolt "go.etcd.io/bbolt"

	"github.com/shoalp2p/shoal/peer/meta"
)

// writeError says, in one line a person can act on, why a torrent's data could not be
// written: a full disk, a read-only file system, no permission. kept is how much verified
// data is on disk and stays there for the next run; -1 when nothing was touched yet.
func writeError(root string, err error, kept, size int64) error {
	keep := fmt.Sprintf("the %s of %s already verified is kept", meta.SizeText(kept), meta.SizeText(size))
	if kept < 0 {
		keep = "nothing on disk was changed"
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("disk full writing %s: %w (%s; free some space and run the same command again to fetch the rest)", root, err, keep)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("cannot write %s: the file system is read-only: %w (%s; make it writable and run the same command again)", root, err, keep)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot write %s: permission denied: %w (%s; fix the permissions and run the same command again)", root, err, keep)
	}
	return fmt.Errorf("writing %s: %w (%s; run the same command again to fetch the rest)", root, err, keep)
}

// checkPlaced makes sure a download whose pieces are all verified has its files at their
// final names: the library renames NAME.part to NAME after the last piece, and when that
// fails it only logs it, and would call the download complete with the data still in NAME.part.
func (t *Torrent) checkPlaced(info *metainfo.Info) error {
	if t.opts.Seed {
		return nil
	}
	_, partial, err := t.store.OnDisk(info)
	if err != nil {
		return err
	}
	if len(partial) > 0 {
		final := strings.TrimSuffix(partial[0], ".part")
		return fmt.Errorf("every piece is verified, but %s could not be renamed to %s (is something in the way, or is the folder read-only?); the data is kept in %s",
			partial[0], final, partial[0])
	}
	return nil
}

// diskNoise keeps the log readable when the disk refuses writes. The library logs an error
// for every block that arrives once the disk is full (hundreds a second), and one for each
// piece it cannot mark or file it cannot flush on a read-only file system, while shoal stops
// and says why in one line (writeError). Unless the log is verbose, the library's records
// that name such a cause are dropped; with --verbose the first of the per-block ones passes.
type diskNoise struct {
	slog.Handler
	seen *atomic.Bool
}

// diskCauses are the errors shoal reports itself, in writeError, and two that follow them:
// when shoal stops for one and closes the torrent, the library may still be marking a piece
// ("restoring part file: file already closed", "setting piece completion batch: database
// not open", seen when a folder cannot be written), which says nothing the one line does not.
var diskCauses = []string{
	syscall.ENOSPC.Error(), syscall.EDQUOT.Error(), syscall.EROFS.Error(), syscall.EACCES.Error(), syscall.EPERM.Error(),
	os.ErrClosed.Error(), bbolt.ErrDatabaseNotOpen.Error(),
}

func quietDiskNoise(h slog.Handler) slog.Handler {
	return diskNoise{Handler: h, seen: new(atomic.Bool)}
}

func (c diskNoise) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return c.Handler.Handle(ctx, r)
	}
	verbose := c.Handler.Enabled(ctx, slog.LevelDebug)
	if strings.Contains(r.Message, "writing received chunk") && (!verbose || c.seen.Swap(true)) {
		return nil
	}
	if !verbose {
		text := r.Message
		r.Attrs(func(a slog.Attr) bool {
			text += " " + a.Value.String()
			return true
		})
		for _, cause := range diskCauses {
			if strings.Contains(text, cause) {
				return nil
			}
		}
	}
	return c.Handler.Handle(ctx, r)
}

func (c diskNoise) WithAttrs(as []slog.Attr) slog.Handler {
	return diskNoise{Handler: c.Handler.WithAttrs(as), seen: c.seen}
}

func (c diskNoise) WithGroup(name string) slog.Handler {
	return diskNoise{Handler: c.Handler.WithGroup(name), seen: c.seen}
}

// verifiedBytes is how much of the torrent is in pieces whose hash has been checked: unlike
// BytesCompleted, not the blocks written into pieces not yet complete.
func (t *Torrent) verifiedBytes(info *metainfo.Info) int64 {
	var n int64
	i := 0
	for _, r := range t.t.PieceStateRuns() {
		if r.Complete {
			for j := i; j < i+r.Length; j++ {
				n += info.Piece(j).Length()
			}
		}
		i += r.Length
	}
	if t.store != nil {
		// Verified, but the write to the file failed: not kept.
		for _, j := range t.store.Unwritten() {
			n -= info.Piece(j).Length()
		}
	}
	return n
}
