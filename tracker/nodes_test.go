package tracker_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	peerannounce "github.com/shoalp2p/shoal/peer/announce"
	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/swarm"
	"github.com/shoalp2p/shoal/tracker"
)

// nodesN is the size of the swarm: one seeder and nodesN-1 leechers.
const nodesN = 20

// Twenty shoal nodes, each on its own loopback address, meet through the tracker alone: no
// direct peers, no PEX. One seeds; once the tracker lists it, the nineteen others download
// at once, and every copy has the original's sha256. Then the tracker has seen each leecher
// complete and leave.
func TestTwentyNodes(t *testing.T) {
	srv := newServer(t, tracker.Config{Interval: time.Minute})
	hs := httptest.NewServer(srv) // 127.0.0.1:0
	defer hs.Close()

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	payload := make([]byte, 3<<20+12345)
	_, _ = rand.Read(payload)
	if err := os.WriteFile(src, payload, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(payload)
	torrent, err := meta.Create(src, meta.CreateOptions{Announce: []string{hs.URL + "/announce"}})
	if err != nil {
		t.Fatal(err)
	}
	ih := torrent.InfoHash.HexString()

	began := time.Now()
	seeder := trackerNode(t, "127.0.0.2")
	st, err := seeder.Add(torrent, peer.AddOptions{Dir: dir, Name: filepath.Base(src), Seed: true})
	if err != nil {
		t.Fatal(err)
	}
	runNode(t, st, peer.RunOptions{SeedTime: -1})
	waitStats(t, hs.URL, 20*time.Second, "the seeder to announce", func(s tracker.Stats) bool {
		return len(s.PerTorrent) == 1 && s.PerTorrent[0].InfoHash == ih && s.PerTorrent[0].Seeders == 1
	})
	t.Logf("seeder listed by the tracker after %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	type leecher struct {
		out string
		run *nodeRun
	}
	var leechers []leecher
	for i := 3; i < 3+nodesN-1; i++ {
		n := trackerNode(t, fmt.Sprintf("127.0.0.%d", i))
		out := t.TempDir()
		tt, err := n.Add(torrent, peer.AddOptions{Dir: out})
		if err != nil {
			t.Fatal(err)
		}
		leechers = append(leechers, leecher{out, runNode(t, tt, peer.RunOptions{SeedTime: 0})})
	}
	deadline := time.After(90 * time.Second)
	for i, l := range leechers {
		select {
		case err := <-l.run.done:
			l.run.done <- err
			if err != nil {
				t.Fatalf("leecher %d: %v", i, err)
			}
		case <-deadline:
			t.Fatalf("leecher %d not done after 90s", i)
		}
	}
	t.Logf("%d leechers downloaded %d bytes each in %v", len(leechers), len(payload), time.Since(began).Round(time.Millisecond))
	for i, l := range leechers {
		if got := swarm.FileSum(t, filepath.Join(l.out, filepath.Base(src))); got != want {
			t.Errorf("leecher %d: sha256 %x, want %x", i, got, want)
		}
	}
	// Each leecher said completed, then stopped, as its Run ended.
	s := waitStats(t, hs.URL, 10*time.Second, "every leecher to complete and leave", func(s tracker.Stats) bool {
		return s.Torrents == 1 && s.Completed == nodesN-1 && s.Leechers == 0 && s.Seeders == 1
	})
	t.Logf("tracker: %d announces, %d refused", s.Announces, s.Failures)
	if s.Failures != 0 {
		t.Errorf("the tracker refused %d announces", s.Failures)
	}
}

// trackerNode starts a node on its own loopback address that finds peers through the
// torrent's trackers only, sending its announces from that address.
func trackerNode(t *testing.T, ip string) *peer.Node {
	t.Helper()
	d := peerannounce.New(peerannounce.Config{LocalIP: netip.MustParseAddr(ip)})
	return swarm.Node(t, peer.Config{Listen: ip + ":0", Discovery: []peer.Discovery{d}})
}

// nodeRun is a torrent's Run in a goroutine the test owns: it is stopped and waited for when
// the test ends.
type nodeRun struct {
	done chan error
}

func runNode(t *testing.T, tt *peer.Torrent, opts peer.RunOptions) *nodeRun {
	ctx, cancel := context.WithCancel(context.Background())
	r := &nodeRun{done: make(chan error, 1)}
	go func() { r.done <- tt.Run(ctx, opts, func(peer.Event) {}) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// waitStats polls GET /stats until ok accepts it, failing the test after timeout.
func waitStats(t *testing.T, base string, timeout time.Duration, what string, ok func(tracker.Stats) bool) tracker.Stats {
	t.Helper()
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last tracker.Stats
	for {
		if resp, err := c.Get(base + "/stats"); err == nil {
			var s tracker.Stats
			err = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
			if err == nil {
				if ok(s) {
					return s
				}
				last = s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last /stats: %+v", timeout, what, last)
		}
		<-tick.C
	}
}
