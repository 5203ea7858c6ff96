// Package swarm runs shoal nodes side by side in one process, each on its own loopback
// address, for tests and experiments. Like net/http/httptest, its helpers take a testing.TB
// and undo what they started when the test ends.
package swarm

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"testing"

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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	complete := make(chan peer.Complete, 1)
	go func() {
		done <- tt.Run(ctx, opts, func(e peer.Event) {
			if c, ok := e.(peer.Complete); ok {
				complete <- c
			}
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, peer.ErrInterrupted) {
			tb.Error(err)
		}
	})
	return complete
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
