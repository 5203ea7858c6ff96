package peer_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/badpeer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// hostileSwarm is an honest seeder, slowed so that a hostile peer gets its share of the
// requests, and a torrent of size bytes in 64 KiB pieces.
func hostileSwarm(t *testing.T, seederIP string, size int) (src *meta.Source, seedDir string, seeder netip.AddrPort, pieces int) {
	t.Helper()
	seedDir = t.TempDir()
	writeTree(t, seedDir, map[string]int{"x.bin": size})
	path := filepath.Join(seedDir, "x.bin")
	src, err := meta.Create(path, meta.CreateOptions{PieceLength: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	info, err := src.MetaInfo.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	n, err := peer.New(peer.Config{Listen: seederIP + ":0", DataDir: t.TempDir(), DisablePEX: true,
		UploadRate: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	tt, err := n.Add(src, peer.AddOptions{Dir: seedDir, Name: "x.bin", Seed: true, Hashed: true})
	if err != nil {
		t.Fatal(err)
	}
	start(t, tt, peer.RunOptions{SeedTime: -1})
	return src, seedDir, n.Addr(), info.NumPieces()
}

func startBad(t *testing.T, ip string, src *meta.Source, pieces int, mode badpeer.Mode) *badpeer.Peer {
	t.Helper()
	b, err := badpeer.Start(ip, src.InfoHash, pieces, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// A peer that answers every request with wrong bytes, beside an honest seeder: every piece it
// sends fails its hash, the leecher bans its IP and says so (piece_failed, ban, the complete
// event's counters), neither dials it again nor lets it back in, and finishes from the seeder
// with the exact file.
func TestCorruptPeerBanned(t *testing.T) {
	src, seedDir, seeder, pieces := hostileSwarm(t, "127.0.0.21", 4<<20)
	bad := startBad(t, "127.0.0.22", src, pieces, badpeer.Corrupt)
	badIP := bad.Addr().Addr().String()

	leecher := node(t, "127.0.0.23")
	dir := t.TempDir()
	tt, err := leecher.Add(src, peer.AddOptions{Dir: dir, Peers: []netip.AddrPort{bad.Addr(), seeder}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var (
		events          []peer.Event
		handshakesAtBan int64 = -1
	)
	// Seeding on for twice the redial period after completing: a banned peer would be dialled
	// again in that time if the ban did not hold.
	err = tt.Run(ctx, peer.RunOptions{SeedTime: 5 * time.Second}, func(e peer.Event) {
		events = append(events, e)
		if b, ok := e.(peer.Ban); ok && b.IP == badIP && handshakesAtBan < 0 {
			handshakesAtBan = bad.Handshakes()
		}
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	sameTree(t, seedDir, dir)

	var failed []peer.PieceFailed
	var bans []peer.Ban
	var done *peer.Complete
	for _, e := range events {
		switch e := e.(type) {
		case peer.PieceFailed:
			failed = append(failed, e)
		case peer.Ban:
			bans = append(bans, e)
		case peer.Complete:
			done = &e
		}
	}
	t.Logf("bad peer: %d connections accepted, %d handshakes (%d at the ban), %d wrong blocks sent; %d piece_failed events; bans %+v",
		bad.Accepted(), bad.Handshakes(), handshakesAtBan, bad.Served(), len(failed), bans)
	if bad.Served() == 0 {
		t.Fatal("the bad peer was never asked for a block: the test proves nothing")
	}
	if len(failed) == 0 {
		t.Fatal("no piece_failed event")
	}
	for _, f := range failed {
		if !slices.Contains(f.Peers, badIP) {
			t.Errorf("piece_failed %+v does not name the bad peer %s", f, badIP)
		}
	}
	if len(bans) != 1 || bans[0].IP != badIP || bans[0].Reason != peer.BanBadData || len(bans[0].Pieces) == 0 {
		t.Fatalf("bans %+v, want one of %s with the pieces it spoilt", bans, badIP)
	}
	if done == nil || done.PiecesFailed < 1 || done.PeersBanned != 1 {
		t.Fatalf("complete event %+v, want pieces_failed >= 1 and peers_banned 1", done)
	}
	if got := leecher.BannedIPs(); !slices.Equal(got, []string{badIP}) {
		t.Fatalf("node's banned IPs %v, want [%s]", got, badIP)
	}
	if bad.Dropped() < 1 {
		t.Fatal("the leecher never closed its connection to the bad peer")
	}
	if h := bad.Handshakes(); h != handshakesAtBan {
		t.Fatalf("the bad peer was dialled again after its ban: %d handshakes at the ban, %d at the end", handshakesAtBan, h)
	}

	// Nor is it let in when it dials: the leecher, still seeding, takes a connection from an
	// IP it has not banned but not from this one.
	other := startBad(t, "127.0.0.24", src, pieces, badpeer.Corrupt)
	if err := other.Dial(leecher.Addr()); err != nil {
		t.Fatalf("a peer that is not banned dials in: %v", err)
	}
	if err := bad.Dial(leecher.Addr()); !errors.Is(err, badpeer.ErrRefused) {
		t.Fatalf("the banned peer dials in: %v, want it refused", err)
	}
}

// Peers that send a message too long to be one (a 1 GiB length prefix), of a type that does
// not exist, or cut short: the leecher drops each connection without reading the rest, and
// the download goes on from the honest seeder.
func TestGarbledPeersDropped(t *testing.T) {
	src, seedDir, seeder, pieces := hostileSwarm(t, "127.0.0.31", 3<<20)
	modes := []badpeer.Mode{badpeer.Oversized, badpeer.UnknownID, badpeer.Truncated}
	var bad []*badpeer.Peer
	addrs := []netip.AddrPort{seeder}
	for i, m := range modes {
		b := startBad(t, netip.AddrFrom4([4]byte{127, 0, 0, byte(32 + i)}).String(), src, pieces, m)
		bad = append(bad, b)
		addrs = append(addrs, b.Addr())
	}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	dir := t.TempDir()
	r := get(t, node(t, "127.0.0.36"), src, dir, -1, addrs...)
	var events []peer.Event
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		events = append(events, r.drain()...)
		complete := slices.ContainsFunc(events, func(e peer.Event) bool { return peer.Kind(e) == "complete" })
		dropped := true
		for _, b := range bad {
			dropped = dropped && b.Dropped() >= 1
		}
		if complete && dropped {
			break
		}
		select {
		case err := <-r.done:
			t.Fatalf("Run ended early: %v", err)
		case <-deadline:
			for i, b := range bad {
				t.Logf("%v peer: %d accepted, %d handshakes, %d dropped", modes[i], b.Accepted(), b.Handshakes(), b.Dropped())
			}
			t.Fatalf("after 90s: complete %v, every garbled peer dropped %v", complete, dropped)
		case <-tick.C:
		}
	}
	if err := r.stop(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	sameTree(t, seedDir, dir)
	for i, b := range bad {
		t.Logf("%v peer: %d accepted, %d handshakes, %d dropped by the leecher", modes[i], b.Accepted(), b.Handshakes(), b.Dropped())
	}
	// Reading the 1 GiB message would allocate it: the whole test allocates far less.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB during the download", alloc>>20)
	if alloc >= badpeer.OversizedLength/2 {
		t.Fatalf("allocated %d MiB: the oversized message was read", alloc>>20)
	}
}
