package dht

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/swarm/simnet"
)

// memNetwork starts n nodes on an in-memory network, joined one after the other through node
// 0, all closed when the test ends.
func memNetwork(t *testing.T, n int, seed uint64) []*Node {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 3))
	sn := simnet.New(simnet.Config{})
	t.Cleanup(func() { sn.Close() })
	nodes := make([]*Node, n)
	boot := []string{}
	for i := range nodes {
		c, err := sn.Listen(netip.MustParseAddrPort(fmt.Sprintf("127.0.4.%d:6881", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		var id [20]byte
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		nd, err := New(Config{Conn: c, ID: id, Bootstrap: boot, Manual: true, QueryTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close() })
		nodes[i] = nd
		if i == 0 {
			boot = []string{nd.Addr().String()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, nd := range nodes[1:] {
		if err := nd.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// TestAnnounceReachesClosest: in a joined network, an announce is stored by exactly the k
// nodes whose ids are closest to the info-hash (the announcer aside: it does not announce to
// itself), whoever announces. (The library's own answers to find_node and get_peers stop
// short of them.)
func TestAnnounceReachesClosest(t *testing.T) {
	nodes := memNetwork(t, 100, 1)
	for trial := range 5 {
		var ih metainfo.Hash
		ih[0], ih[1] = byte(trial*51), 0x42
		from := nodes[trial*17+3]
		if err := from.Announce(context.Background(), peer.Announcement{InfoHash: ih, Port: 7000, Event: peer.EventStarted}); err != nil {
			t.Fatal(err)
		}
		byDistance := slices.DeleteFunc(slices.Clone(nodes), func(nd *Node) bool { return nd == from })
		slices.SortFunc(byDistance, func(a, b *Node) int {
			return cmpDistance(a.s.ID(), b.s.ID(), krpc.ID(ih))
		})
		var storing []int
		for rank, nd := range byDistance {
			if len(nd.store.GetPeers(ih)) > 0 {
				storing = append(storing, rank)
			}
		}
		if !slices.Equal(storing, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
			t.Errorf("announce %d: stored by the nodes of ranks %v by distance, want the 8 closest", trial, storing)
		}
	}
}

func cmpDistance(a, b, target krpc.ID) int {
	for i := range target {
		if x, y := a[i]^target[i], b[i]^target[i]; x != y {
			return int(x) - int(y)
		}
	}
	return 0
}

// TestAnswers: find_node gives the k closest good nodes, sorted, never the querier, and only
// of the family asked for; announce_peer wants a token from get_peers.
func TestAnswers(t *testing.T) {
	nodes := memNetwork(t, 40, 2)
	a, b := nodes[1], nodes[2]
	ctx := context.Background()
	target := krpc.ID{0x99}
	res := a.s.Query(ctx, adht.NewAddr(b.conn.LocalAddr()), "find_node", adht.QueryInput{MsgArgs: krpc.MsgArgs{Target: target}})
	if res.Err != nil || res.Reply.R == nil {
		t.Fatalf("find_node: %v %+v", res.Err, res.Reply)
	}
	got := res.Reply.R.Nodes
	if len(got) != k || len(res.Reply.R.Nodes6) != 0 {
		t.Fatalf("find_node from an IPv4 node: %d nodes, %d nodes6", len(got), len(res.Reply.R.Nodes6))
	}
	if !slices.IsSortedFunc(got, func(x, y krpc.NodeInfo) int { return cmpDistance(x.ID, y.ID, target) }) {
		t.Error("nodes not sorted by distance")
	}
	// They are the closest of b's table (all of it good by now).
	var table []krpc.NodeInfo
	for _, ni := range b.s.Nodes() {
		if ni.ID != a.s.ID() {
			table = append(table, ni)
		}
	}
	slices.SortFunc(table, func(x, y krpc.NodeInfo) int { return cmpDistance(x.ID, y.ID, target) })
	for i := range got {
		if got[i].ID != table[i].ID {
			t.Errorf("node %d: %x, want %x", i, got[i].ID, table[i].ID)
		}
		if got[i].ID == a.s.ID() {
			t.Error("the querier was handed itself")
		}
	}
	res = a.s.Query(ctx, adht.NewAddr(b.conn.LocalAddr()), "find_node", adht.QueryInput{MsgArgs: krpc.MsgArgs{Target: target, Want: []krpc.Want{krpc.WantNodes6}}})
	if r := res.Reply.R; r == nil || len(r.Nodes) != 0 || len(r.Nodes6) != 0 {
		t.Errorf("find_node for IPv6 nodes only, in an IPv4 network: %+v", r)
	}

	ih := krpc.ID{0x12}
	port := 6000
	res = a.s.Query(ctx, adht.NewAddr(b.conn.LocalAddr()), "announce_peer", adht.QueryInput{MsgArgs: krpc.MsgArgs{InfoHash: ih, Port: &port, Token: "forged"}})
	if e := res.Reply.Error(); e == nil {
		t.Errorf("announce_peer with a forged token: %+v", res.Reply)
	}
	res = a.s.Query(ctx, adht.NewAddr(b.conn.LocalAddr()), "get_peers", adht.QueryInput{MsgArgs: krpc.MsgArgs{InfoHash: ih}})
	if res.Reply.R == nil || res.Reply.R.Token == nil {
		t.Fatalf("get_peers: no token: %+v", res.Reply)
	}
	token := *res.Reply.R.Token
	res = a.s.Query(ctx, adht.NewAddr(b.conn.LocalAddr()), "announce_peer", adht.QueryInput{MsgArgs: krpc.MsgArgs{InfoHash: ih, Port: &port, Token: token}})
	if e := res.Reply.Error(); e != nil || res.Err != nil {
		t.Fatalf("announce_peer with a good token: %v %v", e, res.Err)
	}
	res = a.s.Query(ctx, adht.NewAddr(b.conn.LocalAddr()), "get_peers", adht.QueryInput{MsgArgs: krpc.MsgArgs{InfoHash: ih}})
	want := krpc.NodeAddr{IP: a.Addr().Addr().AsSlice(), Port: port}
	if r := res.Reply.R; r == nil || len(r.Values) != 1 || !r.Values[0].Equal(want) || len(r.Nodes) != 0 {
		t.Errorf("get_peers after the announce: %+v, want the value %v and no nodes", r, want)
	}
	// A token is bound to the querier's IP and expires.
	now := time.Now()
	ip := a.Addr().Addr()
	tok := b.tokens.make(ip, now)
	if !b.tokens.valid(tok, ip, now.Add(tokenEvery)) || b.tokens.valid(tok, ip, now.Add(2*tokenEvery)) || b.tokens.valid(tok, netip.MustParseAddr("127.9.9.9"), now) {
		t.Error("token validity")
	}
}
