package dht_test

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/dht"
	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/swarm"
)

// fullNode is a BitTorrent node on ip whose only discovery is a DHT node on the same IP.
func fullNode(t *testing.T, ip string, boot string) *peer.Node {
	t.Helper()
	d, err := dht.New(dht.Config{Listen: ip + ":0", Bootstrap: []string{boot}, StateDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return swarm.Node(t, peer.Config{Listen: ip + ":0", Discovery: []peer.Discovery{d}, Logger: testLogger(t)})
}

// TestFullNodesFindEachOtherByDHT: 20 BitTorrent nodes, each with a DHT node on its own
// loopback IP, all bootstrapped from one bare DHT node. One seeds a random file; the other
// 19 get it with no peer address given (half of them from a magnet, so even the metadata
// comes from peers found through the DHT).
func TestFullNodesFindEachOtherByDHT(t *testing.T) {
	if testing.Short() {
		t.Skip("20 full nodes")
	}
	root := newNode(t, "127.0.0.1", []string{}, "")
	boot := root.Addr().String()
	nodes := make([]*peer.Node, 20)
	for i := range nodes {
		nodes[i] = fullNode(t, fmt.Sprintf("127.0.0.%d", i+2), boot)
	}

	src := filepath.Join(t.TempDir(), "payload.bin")
	data := make([]byte, 3<<20+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	tor, err := meta.Create(src, meta.CreateOptions{PieceLength: 256 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(tor.Trackers) != 0 || len(tor.Peers) != 0 {
		t.Fatalf("the torrent names trackers or peers: %v %v", tor.Trackers, tor.Peers)
	}
	started := time.Now()
	st, err := nodes[0].Add(tor, peer.AddOptions{Dir: filepath.Dir(src), Name: filepath.Base(src), Seed: true})
	if err != nil {
		t.Fatal(err)
	}
	swarm.Run(t, st, peer.RunOptions{SeedTime: -1})

	magnet, err := meta.ParseMagnet(meta.Magnet(tor))
	if err != nil {
		t.Fatal(err)
	}
	dirs := make([]string, len(nodes))
	completes := make([]<-chan peer.Complete, len(nodes))
	for i := 1; i < len(nodes); i++ {
		s := tor
		if i%2 == 0 {
			s = magnet
		}
		dirs[i] = t.TempDir()
		tt, err := nodes[i].Add(s, peer.AddOptions{Dir: dirs[i]})
		if err != nil {
			t.Fatal(err)
		}
		completes[i] = swarm.Run(t, tt, peer.RunOptions{SeedTime: -1})
	}
	deadline := time.After(90 * time.Second)
	var secs []float64
	for i := 1; i < len(nodes); i++ {
		select {
		case c := <-completes[i]:
			secs = append(secs, c.Seconds)
		case <-deadline:
			t.Fatalf("node %d (127.0.0.%d) did not complete in time", i, i+2)
		}
		if got := swarm.FileSum(t, filepath.Join(dirs[i], "payload.bin")); got != want {
			t.Fatalf("node %d: sha256 %x, want %x", i, got, want)
		}
	}
	slices.Sort(secs)
	t.Logf("19 downloads of %d bytes through the DHT alone: all done %v after start; per node min/median/max %.2f/%.2f/%.2f s",
		len(data), time.Since(started).Round(time.Millisecond), secs[0], secs[len(secs)/2], secs[len(secs)-1])
	var sum peer.SearchStats
	for _, n := range nodes {
		s := n.SearchStats()["dht"]
		sum.Announces += s.Announces
		sum.Lookups += s.Lookups
		sum.Sent += s.Sent
		sum.Received += s.Received
		sum.NodesContacted += s.NodesContacted
		sum.PeersFound += s.PeersFound
	}
	t.Logf("DHT cost over the 20 nodes: %+v", sum)
	if sum.Lookups == 0 || sum.Announces == 0 || sum.PeersFound == 0 {
		t.Errorf("implausible DHT stats: %+v", sum)
	}
}
