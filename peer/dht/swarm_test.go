package dht_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/dht"
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

	const size = 3<<20 + 12345
	src, err := swarm.WriteContent(t.TempDir(), size, 1)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	tor, downloads := swarm.Share(t, nodes, src, 90*time.Second)
	if len(tor.Trackers) != 0 || len(tor.Peers) != 0 {
		t.Fatalf("the torrent names trackers or peers: %v %v", tor.Trackers, tor.Peers)
	}
	var secs []float64
	for _, d := range downloads {
		secs = append(secs, d.Seconds)
	}
	slices.Sort(secs)
	t.Logf("19 downloads of %d bytes through the DHT alone: all done %v after start; per node min/median/max %.2f/%.2f/%.2f s",
		size, time.Since(started).Round(time.Millisecond), secs[0], secs[len(secs)/2], secs[len(secs)-1])
	var sum peer.SearchStats
	for _, n := range nodes {
		sum.Add(n.SearchStats()["dht"])
	}
	t.Logf("DHT cost over the 20 nodes: %+v", sum)
	if sum.Lookups == 0 || sum.Announces == 0 || sum.PeersFound == 0 {
		t.Errorf("implausible DHT stats: %+v", sum)
	}
}
