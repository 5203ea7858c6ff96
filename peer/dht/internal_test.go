package dht

import (
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/shoalp2p/shoal/swarm/simnet"
)

func TestKRPCHead(t *testing.T) {
	for _, m := range []krpc.Msg{
		{T: "aa", Y: "q", Q: "get_peers", A: &krpc.MsgArgs{Want: []krpc.Want{"n4"}}},
		{T: "ab", Y: "r", R: &krpc.Return{Nodes: krpc.CompactIPv4NodeInfo{{Addr: krpc.NodeAddr{IP: []byte{1, 2, 3, 4}, Port: 5}}}}},
		{T: "\x00\xff", Y: "e", E: &krpc.Error{Code: 201, Msg: "x"}},
	} {
		b := bencode.MustMarshal(m)
		if y, tid, q := krpcHead(b); y != m.Y[0] || tid != m.T || q != m.Q {
			t.Errorf("%q: y %q, t %q, q %q; want %q, %q, %q", b, y, tid, q, m.Y, m.T, m.Q)
		}
		for i := range b {
			if y, _, _ := krpcHead(b[:i]); y != 0 { // truncated: no type, no panic
				t.Errorf("%q: type %q", b[:i], y)
			}
		}
	}
	for _, b := range []string{"", "d", "de", "le", "d1:y", "d1:yi1ee", "d1:y2:qqe", "d1:a99999999999:x1:y1:qe", "d1:xlllllllllllllllllllllllllllllllllllllllllllllllllleeeee1:y1:qe"} {
		if y, _, _ := krpcHead([]byte(b)); y != 0 {
			t.Errorf("%q: type %q, want none", b, y)
		}
	}
}

func TestPeerStore(t *testing.T) {
	s := newPeerStore()
	var ih [20]byte
	s.AddPeer(ih, krpc.NodeAddr{IP: netip.MustParseAddr("127.0.0.2").AsSlice(), Port: 1000})
	s.AddPeer(ih, krpc.NodeAddr{IP: netip.MustParseAddr("::ffff:127.0.0.2").AsSlice(), Port: 1000}) // the same
	s.AddPeer(ih, krpc.NodeAddr{IP: netip.MustParseAddr("127.0.0.2").AsSlice(), Port: 1001})        // same IP, other port
	s.AddPeer(ih, krpc.NodeAddr{IP: netip.MustParseAddr("127.0.0.3").AsSlice(), Port: 0})           // no port
	got := s.GetPeers(ih)
	if len(got) != 2 {
		t.Fatalf("got %v, want 2 peers", got)
	}
	for _, p := range got {
		if len(p.IP) != 4 {
			t.Errorf("%v: IPv4 not 4 bytes", p)
		}
	}
	for i := range maxPeersPerHash + 10 {
		s.AddPeer(ih, krpc.NodeAddr{IP: []byte{10, 0, byte(i >> 8), byte(i)}, Port: 1})
	}
	if n := len(s.m[ih]); n != maxPeersPerHash {
		t.Errorf("%d peers kept, want %d", n, maxPeersPerHash)
	}
	if n := len(s.GetPeers(ih)); n != maxValues {
		t.Errorf("%d peers returned, want %d", n, maxValues)
	}
}

func TestIDInBucket(t *testing.T) {
	own := krpc.RandomNodeID()
	for b := range 160 {
		for range 5 {
			id := idInBucket(own, b)
			if got := sharedBits(own, id); got != b {
				t.Fatalf("bucket %d: id %x shares %d bits with %x", b, id, got, own)
			}
		}
	}
	if got := sharedBits(own, own); got != 159 {
		t.Errorf("an id shares %d bits with itself, want the 159 cap", got)
	}
}

// TestGood: a node that answered is good for 15 minutes (BEP 5), or for good on a Manual
// node, which refreshes nothing.
func TestGood(t *testing.T) {
	sn := simnet.New(simnet.Config{})
	defer sn.Close()
	pc, err := sn.Listen(netip.MustParseAddrPort("127.0.5.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := newCountingConn(pc, NewMeter(), false, new(drops))
	ap := netip.MustParseAddrPort("127.0.5.2:1")
	now := time.Now()
	if c.good(ap, now, false) {
		t.Error("a node never heard from is good")
	}
	c.replied(ap)
	if !c.good(ap, now.Add(14*time.Minute), false) || c.good(ap, now.Add(16*time.Minute), false) || !c.good(ap, now.Add(16*time.Minute), true) {
		t.Error("good for 15 minutes, or forever")
	}
}
