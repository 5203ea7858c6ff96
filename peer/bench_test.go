package peer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// benchTransferSize is the payload BenchmarkTransfer moves per iteration.
const benchTransferSize = 64 << 20

// benchTransferTimeout bounds one download; Run then returns peer.ErrInterrupted.
const benchTransferTimeout = 2 * time.Minute

// BenchmarkTransfer moves a 64 MiB file from a seeder node to a fresh leecher node over
// loopback TCP, in this one process, once per iteration. The leecher is given the seeder's
// address directly; nothing else finds peers. Timed: starting the leecher node, downloading
// and hash-checking every piece (Run returns at completion with SeedTime 0), closing the node.
// Not timed: making the payload, seeding it, and comparing each copy with the original.
//
//	go test -run '^$' -bench Transfer -benchtime 3x ./peer
func BenchmarkTransfer(b *testing.B) {
	seedDir := b.TempDir()
	payload, path := benchPayload(b, seedDir, benchTransferSize)
	src, err := meta.Create(path, meta.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}

	// The seeder. Each node has its own loopback address: the library bans peers by IP.
	seeder, st := benchSeeder(b, src, seedDir)
	ctx, cancel := context.WithCancel(context.Background())
	seedDone := make(chan error, 1)
	// Run emits its first Progress event once the data is verified and it is seeding.
	seeding := make(chan struct{})
	go func() {
		first := true
		seedDone <- st.Run(ctx, peer.RunOptions{SeedTime: -1, Interval: 50 * time.Millisecond}, func(e peer.Event) {
			if _, ok := e.(peer.Progress); ok && first {
				first = false
				close(seeding)
			}
		})
	}()
	defer func() {
		cancel()
		if err := <-seedDone; err != nil {
			b.Errorf("seeder: %v", err)
		}
		if err := seeder.Close(); err != nil {
			b.Errorf("closing seeder: %v", err)
		}
	}()
	select {
	case <-seeding:
	case err := <-seedDone:
		seedDone <- err
		b.Fatalf("seeder stopped before seeding: %v", err)
	}

	getRoot := b.TempDir()
	b.SetBytes(benchTransferSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir, err := os.MkdirTemp(getRoot, "get-")
		if err != nil {
			b.Fatal(err)
		}
		if err := benchDownload(src, dir, seeder.Addr()); err != nil {
			b.Fatalf("iteration %d: %v", i, err)
		}
		b.StopTimer()
		got, err := os.ReadFile(filepath.Join(dir, "data", src.Name))
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, payload) {
			b.Fatalf("iteration %d: downloaded copy differs from the original", i)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// benchDownload starts a leecher node with its state under dir, downloads src into dir/data
// from the seeder at from, and closes the node.
func benchDownload(src *meta.Source, dir string, from netip.AddrPort) (err error) {
	n, err := peer.New(peer.Config{Listen: "127.0.0.3:0", DataDir: filepath.Join(dir, "state"), DisablePEX: true})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	t, err := n.Add(src, peer.AddOptions{Dir: filepath.Join(dir, "data"), Peers: []netip.AddrPort{from}})
	if err != nil {
		return err
	}
	// A stalled transfer fails the benchmark instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), benchTransferTimeout)
	defer cancel()
	return t.Run(ctx, peer.RunOptions{SeedTime: 0}, func(peer.Event) {})
}

// BenchmarkSeedStart is a seeder's start on 256 MiB of data already on disk: from Add to the
// first Progress event of Run, which comes once every piece is hashed and it is seeding.
//
//	go test -run '^$' -bench SeedStart -count 6 ./peer
func BenchmarkSeedStart(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	_, path := benchPayload(b, dir, size)
	src, err := meta.Create(path, meta.CreateOptions{PieceLength: 256 << 10})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, st := benchSeeder(b, src, dir)
		ctx, cancel := context.WithCancel(context.Background())
		err := st.Run(ctx, peer.RunOptions{SeedTime: -1, Interval: 10 * time.Millisecond}, func(e peer.Event) {
			if _, ok := e.(peer.Progress); ok {
				cancel()
			}
		})
		cancel()
		b.StopTimer()
		if err != nil && !errors.Is(err, peer.ErrInterrupted) {
			b.Fatalf("seeding: %v", err)
		}
		if err := n.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// benchPayload writes size random bytes to dir/payload.bin and returns them and the path.
func benchPayload(b *testing.B, dir string, size int) ([]byte, string) {
	payload := make([]byte, size)
	if _, err := rand.Read(payload); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(path, payload, 0o644); err != nil {
		b.Fatal(err)
	}
	return payload, path
}

// benchSeeder starts a node on 127.0.0.2 and adds src as a seed of dir/payload.bin; the
// caller runs the torrent and closes the node.
func benchSeeder(b *testing.B, src *meta.Source, dir string) (*peer.Node, *peer.Torrent) {
	n, err := peer.New(peer.Config{Listen: "127.0.0.2:0", DataDir: b.TempDir(), DisablePEX: true})
	if err != nil {
		b.Fatal(err)
	}
	t, err := n.Add(src, peer.AddOptions{Dir: dir, Name: "payload.bin", Seed: true})
	if err != nil {
		n.Close()
		b.Fatal(err)
	}
	return n, t
}
