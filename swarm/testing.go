package swarm

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// Option changes how New builds a swarm.
type Option func(tb testing.TB, c *Config)

// WithMode chooses how the nodes find each other: "dht" (default), "flood", "walk" or
// "tracker".
func WithMode(mode string) Option { return func(_ testing.TB, c *Config) { c.Mode = mode } }

// WithLogger gives every node l, with its address attached; the default discards the log.
func WithLogger(l *slog.Logger) Option { return func(_ testing.TB, c *Config) { c.Logger = l } }

// WithTestLog logs at level and above through tb.Log, so a failing test shows what the
// nodes said.
func WithTestLog(level slog.Level) Option {
	return func(tb testing.TB, c *Config) { c.Logger = TestLogger(tb, level) }
}

// WithRates caps each node's download and upload, in payload bytes per second (0: no cap).
func WithRates(down, up int64) Option {
	return func(_ testing.TB, c *Config) { c.DownloadRate, c.UploadRate = down, up }
}

// New starts a swarm of n nodes for a test, as Start does, in a folder of the test's, and
// closes it when the test ends. It fails the test if the swarm cannot start.
func New(tb testing.TB, n int, opts ...Option) *Swarm {
	tb.Helper()
	cfg := Config{Nodes: n, Dir: tb.TempDir()}
	for _, opt := range opts {
		opt(tb, &cfg)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

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

// Download is one node's finished download.
type Download struct {
	Node    int     // index in the nodes given
	Dir     string  // the folder the content went in
	Seconds float64 // from the start of its run to complete
}

// Share seeds the file or folder at path from nodes[0] and fetches it on every other node
// at once, with no peer address given, as Swarm.Seed and Swarm.Fetch do on nodes the test
// made itself (and closes itself); the even-numbered nodes start from the bare magnet link,
// so even the metadata comes from peers their discovery found. It fails tb unless every
// copy's sha256 matches within timeout, and returns the torrent and the downloads, which
// keep seeding until the test ends.
func Share(tb testing.TB, nodes []*peer.Node, path string, timeout time.Duration) (*meta.Source, []Download) {
	tb.Helper()
	s := &Swarm{
		log: slog.New(slog.DiscardHandler), dir: tb.TempDir(), nodes: nodes,
		dead: make(map[int]frozen), seeded: make(map[metainfo.Hash]seeding),
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	ctx := context.Background()
	src, err := s.Seed(ctx, path)
	if err != nil {
		tb.Fatal(err)
	}
	rep, err := s.Fetch(ctx, src, FetchOptions{Timeout: timeout, Magnet: true}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if !rep.OK {
		tb.Fatalf("swarm: %s", rep.Reason)
	}
	var out []Download
	for _, n := range rep.PerNode {
		if n.Role == "leecher" {
			out = append(out, Download{Node: n.Node, Dir: filepath.Dir(n.Path), Seconds: n.Seconds})
		}
	}
	return src, out
}

// Run runs tt in a goroutine that is stopped and waited for when tb ends; the channel
// receives its Complete event.
func Run(tb testing.TB, tt *peer.Torrent, opts peer.RunOptions) <-chan peer.Complete {
	tb.Helper()
	complete := make(chan peer.Complete, 1)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		var completed atomic.Bool
		err := tt.Run(ctx, opts, func(e peer.Event) {
			if c, ok := e.(peer.Complete); ok && completed.CompareAndSwap(false, true) {
				complete <- c
			}
		})
		ended <- err
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-ended; err != nil && !errors.Is(err, peer.ErrInterrupted) {
			tb.Error(err)
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

// FileSum is the sha256 of the file at path; it fails tb if the file cannot be read.
func FileSum(tb testing.TB, path string) [32]byte {
	tb.Helper()
	sum, err := fileSum(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sum
}
