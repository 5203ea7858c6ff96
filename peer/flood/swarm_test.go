package flood_test

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/swarm"
)

// tcpNode starts an overlay node on ip (any free port) joining through boot.
func tcpNode(t *testing.T, ip string, boot []netip.AddrPort) *flood.Node {
	t.Helper()
	tr, err := transport.ListenTCP(ip + ":0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := flood.New(flood.Config{Transport: tr, Bootstrap: boot, Logger: testLogger(t)})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	return n
}

// fullNode is a BitTorrent node on ip whose only discovery is a flood node on the same IP.
func fullNode(t *testing.T, ip string, boot netip.AddrPort) (*peer.Node, *flood.Node) {
	t.Helper()
	f := tcpNode(t, ip, []netip.AddrPort{boot})
	return swarm.Node(t, peer.Config{Listen: ip + ":0", Discovery: []peer.Discovery{f}, Logger: testLogger(t)}), f
}

// TestFullNodesFindEachOtherByFlooding: 30 BitTorrent nodes, each with an overlay node on its
// own loopback IP, all joining through one bare overlay node. One seeds a random file; the
// other 29 get it with no peer address given (half from a magnet, so even the metadata comes
// from peers found by flooding). Then a third of the overlay nodes leave; the rest re-form
// and a newcomer still finds the file by flooding.
func TestFullNodesFindEachOtherByFlooding(t *testing.T) {
	if testing.Short() {
		t.Skip("30 full nodes")
	}
	root := tcpNode(t, "127.0.0.1", nil)
	defer root.Close()
	nodes := make([]*peer.Node, 30)
	overlay := make([]*flood.Node, 30)
	for i := range nodes {
		nodes[i], overlay[i] = fullNode(t, fmt.Sprintf("127.0.0.%d", i+2), root.Addr())
	}

	const size = 2<<20 + 54321
	src, err := swarm.WriteContent(t.TempDir(), size, 1)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	tor, downloads := swarm.Share(t, nodes, src, 120*time.Second)
	if len(tor.Trackers) != 0 || len(tor.Peers) != 0 {
		t.Fatalf("the torrent names trackers or peers: %v %v", tor.Trackers, tor.Peers)
	}
	var secs []float64
	for _, d := range downloads {
		secs = append(secs, d.Seconds)
	}
	slices.Sort(secs)
	t.Logf("29 downloads of %d bytes by flooding alone: all done %v after start; per node min/median/max %.2f/%.2f/%.2f s",
		size, time.Since(started).Round(time.Millisecond), secs[0], secs[len(secs)/2], secs[len(secs)-1])
	var sum peer.SearchStats
	var firstHit time.Duration
	var hits int64
	for i, n := range nodes {
		sum.Add(n.SearchStats()["flood"])
		fs := overlay[i].FloodStats()
		firstHit += fs.FirstHit * time.Duration(fs.LookupsHit)
		hits += fs.LookupsHit
	}
	t.Logf("flood cost over the 30 nodes: %+v; mean time to first hit %v", sum, firstHit/time.Duration(max(hits, 1)))
	if sum.Lookups == 0 || sum.Announces == 0 || sum.PeersFound == 0 {
		t.Errorf("implausible flood stats: %+v", sum)
	}

	// Churn: a third of the overlay nodes leave (their BitTorrent nodes stay, deaf). The rest
	// re-form to the degree bounds, and a newcomer still finds the file by flooding.
	for _, f := range overlay[20:] {
		f.Close()
	}
	live := append([]*flood.Node{root}, overlay[:20]...)
	reformed := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for ok := false; !ok; {
		select {
		case <-tick.C:
		case <-deadline:
			for i, f := range live {
				t.Logf("overlay node %d: %d neighbours", i, f.Neighbours())
			}
			t.Fatal("the overlay did not re-form to 4..8 neighbours each within 30s")
		}
		ok = true
		for _, f := range live {
			ok = ok && f.Neighbours() >= flood.DefaultDegree && f.Neighbours() <= 2*flood.DefaultDegree
		}
	}
	t.Logf("after 10 of 31 overlay nodes left, the other 21 re-formed to 4..8 neighbours in %v", time.Since(reformed).Round(time.Millisecond))
	late, _ := fullNode(t, "127.0.0.40", root.Addr())
	dir := t.TempDir()
	magnet, err := meta.ParseMagnet(meta.Magnet(tor))
	if err != nil {
		t.Fatal(err)
	}
	tt, err := late.Add(magnet, peer.AddOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-swarm.Run(t, tt, peer.RunOptions{SeedTime: -1}):
		t.Logf("a newcomer after the churn: complete in %.2f s", c.Seconds)
	case <-time.After(60 * time.Second):
		t.Fatal("the newcomer did not complete after the churn")
	}
	if got, want := swarm.FileSum(t, filepath.Join(dir, "payload.bin")), swarm.FileSum(t, src); got != want {
		t.Fatalf("newcomer: sha256 %x, want %x", got, want)
	}
}
