package dht

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent/bencode"

	"github.com/shoalp2p/shoal/swarm/simnet"
)

// honestWait is how long the honest check waits for the node's answers (generous: the
// machine may be loaded, and a node that answers at all answers in microseconds).
const honestWait = 30 * time.Second

// FuzzPacket: one real node, on an in-memory network, is sent each input as a datagram from an
// address of its own (so that the per-IP rate limit never hides the library from the fuzzer);
// then an honest node, from another address of its own, pings it and asks it a find_node, and
// both must be answered. A panic in the library's read loop or in the node's answer loop kills
// the process: go test reports the input that did it. The ping's answer means the library's
// read loop, which reads datagrams in order, has handled the input; the find_node's answer
// means the node's answer loop, which takes queries in order, has too. Nothing may be written
// to the library's global logger (standard error) either: the guard drops what the library
// would log. The seeds are under testdata/fuzz/FuzzPacket: BEP 44 get and put without
// arguments (put used to panic the library), truncated and wrong-typed bencode, a valid
// ping, find_node, get_peers and announce_peer, an oversize datagram, huge transaction ids.
func FuzzPacket(f *testing.F) {
	// What the library writes to anacrolix/log's global logger is counted (set before the node
	// starts and put back after it stops: the library's goroutines read it).
	var libLog libLogCounter
	saved := alog.Default
	f.Cleanup(func() { alog.Default = saved })
	lg := alog.Default
	lg.Handlers = []alog.Handler{&libLog}
	alog.Default = lg

	sn := simnet.New(simnet.Config{})
	f.Cleanup(func() { sn.Close() })
	pc, err := sn.Listen(netip.MustParseAddrPort("127.0.0.1:6881"))
	if err != nil {
		f.Fatal(err)
	}
	n, err := New(Config{Conn: pc, Bootstrap: []string{}, Manual: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close() })
	to := n.Addr()

	// Each input's attacker and honest node get addresses of their own: 127.1.0.0 on for the
	// attackers, 127.128.0.0 on for the honest, a counter's worth each (2^23 of them, then
	// again from the start: the limiter has long forgotten them by then).
	var count uint32
	addr := func(base uint32) netip.AddrPort {
		a := base + count%(1<<23)
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(a >> 16), byte(a >> 8), byte(a)}), 6881)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		count++
		at, err := sn.Listen(addr(1 << 16))
		if err != nil {
			t.Fatal(err)
		}
		_, err = at.WriteTo(b, pc.LocalAddr())
		at.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := honestCheck(sn, addr(128<<16), to); err != nil {
			t.Fatalf("after %q: %v", b, err)
		}
		if c := libLog.n.Load(); c > 0 {
			t.Fatalf("after %q: the library wrote %d lines to its global logger; the first: %s", b, c, *libLog.first.Load())
		}
	})
}

// honestCheck sends, from a socket of its own at from, a ping and a find_node to the node at
// to, and waits for both answers.
func honestCheck(sn *simnet.Network, from, to netip.AddrPort) error {
	c, err := sn.Listen(from)
	if err != nil {
		return err
	}
	defer c.Close()
	id := krpc.RandomNodeID()
	want := map[string]string{"p1": "ping", "f1": "find_node"}
	for tx, q := range want {
		args := &krpc.MsgArgs{ID: id}
		if q == "find_node" {
			args.Target = krpc.RandomNodeID()
		}
		m := bencode.MustMarshal(krpc.Msg{T: tx, Y: "q", Q: q, A: args})
		if _, err := c.WriteTo(m, net.UDPAddrFromAddrPort(to)); err != nil {
			return err
		}
	}
	c.SetReadDeadline(time.Now().Add(honestWait))
	buf := make([]byte, 1<<16)
	for len(want) > 0 {
		k, src, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("the node did not answer the honest %v within %v", want, honestWait)
		}
		if err != nil {
			return err
		}
		if addrPortOf(src) != to {
			continue
		}
		var m krpc.Msg
		if bencode.Unmarshal(buf[:k], &m) != nil || m.Y == "q" { // the node pings us back too
			continue
		}
		q, ok := want[m.T]
		if !ok {
			continue
		}
		if m.Y != "r" || m.R == nil {
			return fmt.Errorf("the node answered the honest %s with %q", q, buf[:k])
		}
		delete(want, m.T)
	}
	return nil
}
