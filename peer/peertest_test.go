package peer_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/swarm"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, swarm.LibraryGoroutines()...)
}

// writeTree writes files of random bytes under root, each path relative to it.
func writeTree(t testing.TB, root string, sizes map[string]int) {
	t.Helper()
	for rel, n := range sizes {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		_, _ = rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sameTree fails unless every file under want has the same sha256 under got.
func sameTree(t testing.TB, want, got string) {
	t.Helper()
	n := 0
	err := filepath.Walk(want, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if a, b := fileHash(t, p), fileHash(t, filepath.Join(got, rel)); a != b {
			t.Errorf("%s: sha256 %x, want %x", rel, b, a)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files under %s", want)
	}
}

func fileHash(t testing.TB, p string) [32]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// node starts a node on its own loopback address (the library bans peers by IP).
func node(t testing.TB, ip string) *peer.Node {
	t.Helper()
	n, err := peer.New(peer.Config{Listen: ip + ":0", DataDir: t.TempDir(), DisablePEX: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// running is a torrent whose Run goroutine the test owns: stop cancels it and waits.
type running struct {
	cancel context.CancelFunc
	done   chan error
	events chan peer.Event
}

func start(t testing.TB, tt *peer.Torrent, opts peer.RunOptions) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), events: make(chan peer.Event, 1<<14)}
	go func() {
		r.done <- tt.Run(ctx, opts, func(e peer.Event) {
			select {
			case r.events <- e:
			default:
			}
		})
	}()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *running) stop() error {
	r.cancel()
	err := <-r.done
	r.done <- err // stop may be called again
	return err
}

// wait returns Run's result, failing the test after the deadline.
func (r *running) wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(d):
		t.Fatalf("not done after %v", d)
		return nil
	}
}

// drain returns the events Run emitted so far.
func (r *running) drain() []peer.Event {
	var out []peer.Event
	for {
		select {
		case e := <-r.events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// complete returns the Complete event, if Run emitted one.
func (r *running) complete() (peer.Complete, bool) {
	for _, e := range r.drain() {
		if c, ok := e.(peer.Complete); ok {
			return c, true
		}
	}
	return peer.Complete{}, false
}

// seed makes a torrent of path and seeds it from n until the test ends.
func seed(t testing.TB, n *peer.Node, path string) *meta.Source {
	t.Helper()
	src, err := meta.Create(path, meta.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tt, err := n.Add(src, peer.AddOptions{Dir: filepath.Dir(path), Name: filepath.Base(path), Seed: true})
	if err != nil {
		t.Fatal(err)
	}
	start(t, tt, peer.RunOptions{SeedTime: -1})
	return src
}

func get(t testing.TB, n *peer.Node, src *meta.Source, dir string, seedTime time.Duration, peers ...netip.AddrPort) *running {
	t.Helper()
	tt, err := n.Add(src, peer.AddOptions{Dir: dir, Peers: peers})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, tt, peer.RunOptions{SeedTime: seedTime})
}
