// Package swarm runs shoal nodes side by side in one process, each on its own loopback
// address, for tests and experiments. Like net/http/httptest, its helpers take a testing.TB
// and undo what they started when the test ends.
package swarm

import (
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/peer"
)

// Node starts a BitTorrent node from cfg and closes it when tb ends. An empty DataDir gets a
// temporary one; PEX is always off, so that every peer a node finds was found by its
// discovery adapters.
func Node(tb testing.TB, cfg peer.Config) *peer.Node {
	tb.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = tb.TempDir()
	}
	cfg.DisablePEX = true
	n, err := peer.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := n.Close(); err != nil {
			tb.Error(err)
		}
	})
	return n
}

// Run runs tt in a goroutine that is stopped and waited for when tb ends; the channel
// receives its Complete event.
func Run(tb testing.TB, tt *peer.Torrent, opts peer.RunOptions) <-chan peer.Complete {
	tb.Helper()
	complete := make(chan peer.Complete, 1)
	run(tb, tt, opts, func(c peer.Complete, err error) {
		if err == nil {
			complete <- c
		}
	})
	return complete
}

// TestLogger logs at level and above through tb.Log, so a failing test shows what its nodes
// said.
func TestLogger(tb testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: level}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(b []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// LibraryGoroutines are the goleak options for the goroutines the torrent library's
// dependencies start once per process and never stop; every package whose tests run full
// nodes passes them to goleak.VerifyTestMain.
func LibraryGoroutines() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/anacrolix/torrent/internal/alloclim.(*Limiter).run"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/anacrolix/missinggo/v2/panicif.init"),
	}
}

// FileSum is the sha256 of the file at path.
func FileSum(tb testing.TB, path string) [32]byte {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		tb.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}
