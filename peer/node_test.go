package peer_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// A folder of several files moves from a seeder to a leecher, identical file by file.
func TestTwoNodesFolder(t *testing.T) {
	src := filepath.Join(t.TempDir(), "album")
	writeTree(t, src, map[string]int{
		"a.bin": 3<<20 + 17, "b/c.bin": 1 << 20, "b/d/e.txt": 10, "f.bin": 700 << 10,
	})
	seeder := node(t, "127.0.0.2")
	s := seed(t, seeder, src)

	out := t.TempDir()
	leecher := node(t, "127.0.0.3")
	r := get(t, leecher, s, out, 0, seeder.Addr())
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, src, filepath.Join(out, "album"))
	var found []peer.PeerFound
	var c peer.Complete
	for _, e := range r.drain() {
		switch e := e.(type) {
		case peer.PeerFound:
			found = append(found, e)
		case peer.Complete:
			c = e
		}
	}
	if c.Downloaded < s.Info.TotalLength() || c.Size != s.Info.TotalLength() {
		t.Fatalf("complete event %+v, want downloaded >= %d", c, s.Info.TotalLength())
	}
	if len(found) != 1 || found[0].Addr != seeder.Addr().String() || found[0].Source != "direct" {
		t.Fatalf("peer events %+v, want the seeder %s from source direct", found, seeder.Addr())
	}
}

// A magnet link carries no metadata: the leecher fetches it from the seeder (BEP 9).
func TestMagnetFetchesMetadata(t *testing.T) {
	src := filepath.Join(t.TempDir(), "one.bin")
	writeTree(t, filepath.Dir(src), map[string]int{"one.bin": 2 << 20})
	seeder := node(t, "127.0.0.2")
	s := seed(t, seeder, src)
	m, err := meta.ParseMagnet(meta.Magnet(s))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	r := get(t, node(t, "127.0.0.3"), m, out, 0, seeder.Addr())
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Dir(src), out)
}

// Two nodes may share a data dir (two shoal commands run by one user): the data dir holds the
// resume records and nothing else. The library used to open a piece-completion database of its
// own there, which the first node held locked: the second waited a second for it and warned
// "couldn't open piece completion db" on standard error.
func TestSharedDataDir(t *testing.T) {
	src := filepath.Join(t.TempDir(), "shared.bin")
	writeTree(t, filepath.Dir(src), map[string]int{"shared.bin": 1 << 20})
	dataDir := t.TempDir()
	start := func(ip string) *peer.Node {
		n, err := peer.New(peer.Config{Listen: ip + ":0", DataDir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	seeder := start("127.0.0.2")
	s := seed(t, seeder, src)
	out := t.TempDir()
	if err := get(t, start("127.0.0.3"), s, out, 0, seeder.Addr()).wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Dir(src), out)
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "resume" {
			t.Errorf("the data dir holds %q, want only resume/", e.Name())
		}
	}
}

// Three nodes: once the seeder is gone, a new leecher finishes from the first leecher.
func TestLeecherServesAfterSeederLeaves(t *testing.T) {
	src := filepath.Join(t.TempDir(), "data.bin")
	writeTree(t, filepath.Dir(src), map[string]int{"data.bin": 6 << 20})
	seeder := node(t, "127.0.0.2")
	s := seed(t, seeder, src)

	outA := t.TempDir()
	a := node(t, "127.0.0.3")
	ra := get(t, a, s, outA, -1, seeder.Addr()) // keeps seeding
	waitEvent(t, ra, 60*time.Second, func(e peer.Event) bool { _, ok := e.(peer.Complete); return ok })
	seederAddr := seeder.Addr()
	if err := seeder.Close(); err != nil {
		t.Fatal(err)
	}

	outB := t.TempDir()
	rb := get(t, node(t, "127.0.0.4"), s, outB, 0, seederAddr, a.Addr())
	if err := rb.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Dir(src), outB)
	c, _ := rb.complete()
	if c.Downloaded < s.Info.TotalLength() {
		t.Fatalf("B read %d bytes, want the whole %d from A", c.Downloaded, s.Info.TotalLength())
	}
}

// Seeding data that does not match its torrent is an error, and the data is left alone.
func TestSeedRefusesCorruptData(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.bin")
	writeTree(t, dir, map[string]int{"x.bin": 2 << 20})
	s, err := meta.Create(p, meta.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	b[1<<20] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	n := node(t, "127.0.0.2")
	tt, err := n.Add(s, peer.AddOptions{Dir: dir, Seed: true})
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, tt, peer.RunOptions{SeedTime: -1})
	err = r.wait(t, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Run: %v, want a mismatch error", err)
	}
	if after, _ := os.ReadFile(p); string(after) != string(b) {
		t.Fatal("seed changed the data on disk")
	}
}

// A leecher interrupted before completing says so.
func TestInterruptedBeforeComplete(t *testing.T) {
	s, err := meta.ParseMagnet("magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567")
	if err != nil {
		t.Fatal(err)
	}
	r := get(t, node(t, "127.0.0.3"), s, t.TempDir(), 0)
	if err := r.stop(); !errors.Is(err, peer.ErrInterrupted) {
		t.Fatalf("Run after cancel: %v, want ErrInterrupted", err)
	}
}

// A busy port is a clear error.
func TestBusyPort(t *testing.T) {
	a := node(t, "127.0.0.2")
	_, err := peer.New(peer.Config{Listen: a.Addr().String(), DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second node on %s: %v", a.Addr(), err)
	}
}

func waitEvent(t *testing.T, r *running, d time.Duration, match func(peer.Event) bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-r.events:
			if match(e) {
				return
			}
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Run ended early: %v", err)
		case <-deadline:
			t.Fatalf("no matching event after %v", d)
		}
	}
}

// A seed whose torrent was just made from its data (Hashed) is not hashed a second time, and
// serves the file exactly.
func TestSeedJustHashed(t *testing.T) {
	src := filepath.Join(t.TempDir(), "fresh.bin")
	writeTree(t, filepath.Dir(src), map[string]int{"fresh.bin": 2 << 20})
	s, err := meta.Create(src, meta.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seeder := node(t, "127.0.0.2")
	tt, err := seeder.Add(s, peer.AddOptions{Dir: filepath.Dir(src), Name: filepath.Base(src), Seed: true, Hashed: true})
	if err != nil {
		t.Fatal(err)
	}
	sr := start(t, tt, peer.RunOptions{SeedTime: -1})
	hashed := false
	waitEvent(t, sr, 10*time.Second, func(e peer.Event) bool {
		_, v := e.(peer.Verify)
		hashed = hashed || v
		_, ok := e.(peer.Complete)
		return ok
	})

	out := t.TempDir()
	r := get(t, node(t, "127.0.0.3"), s, out, 0, seeder.Addr())
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Dir(src), out)
	if hashed {
		t.Fatal("the seed was hashed again")
	}
}
