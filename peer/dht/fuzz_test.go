package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/int160"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/shoalp2p/shoal/swarm/simnet"
)

// honestWait is how long the honest check waits for the node's answers (generous: the
// machine may be loaded, and a node that answers at all answers in microseconds).
const honestWait = 30 * time.Second

// FuzzPacket: one real node, on an in-memory network, is sent each input as a datagram from an
// address of its own (so that the per-IP rate limit never hides the library from the fuzzer);
// then an honest node, from another address of its own, pings it and asks it a find_node, and
// both must be answered. An input that is a reply or an error (by its "y") is sent as the
// answer to a get_peers the node sends the attacker as a lookup does, with the query's
// transaction id put in its "t": the guard must take it for that answer, and the library and
// the lookup's code read it. A panic in the library's read loop, in the node's answer loop or
// in the lookup's reading of replies kills the process: go test reports the input that did
// it. The ping's answer means the library's read loop, which reads datagrams in order, has
// handled the input; the find_node's answer means the node's answer loop, which takes queries
// in order, has too. Nothing may be written to the library's global logger (standard error)
// either: the guard drops what the library would log. The seeds are under
// testdata/fuzz/FuzzPacket: BEP 44 get and put without arguments (put used to panic the
// library), truncated and wrong-typed bencode, a valid ping, find_node, get_peers and
// announce_peer, an oversize datagram, huge transaction ids, replies with nodes and values
// of wrong lengths, errors without their list.
func FuzzPacket(f *testing.F) {
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
	// attackers, 127.128.0.0 on for the honest, a counter's worth each (2^22 of them, then
	// again from the start: the limiter has long forgotten them by then).
	var count uint32
	addr := func(base uint32) netip.AddrPort {
		a := base + count%(1<<22)
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, byte(a >> 16), byte(a >> 8), byte(a)}), 6881)
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		count++
		logged := libLog.n.Load()
		at, err := sn.Listen(addr(1 << 16))
		if err != nil {
			t.Fatal(err)
		}
		defer at.Close()
		if y, _, _ := krpcHead(b); y == 'r' || y == 'e' {
			// A reply: to a get_peers of the node's own (as a lookup sends), with its
			// transaction id put in, so that the guard lets it through as it would a real one.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				// The peers a lookup would hand out are real addresses.
				peers := n.newPeerSet()
				visit := func(_ int, values []krpc.NodeAddr) {
					for _, ap := range peers.add(values) {
						if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
							t.Errorf("a lookup would hand out peer %v", ap)
						}
					}
				}
				w := &walk{target: int160.FromByteArray(krpc.RandomNodeID()), depth: make(map[netip.AddrPort]int), visit: visit}
				w.query(ctx, n.s, krpc.NodeAddr{IP: at.AddrPort().Addr().AsSlice(), Port: int(at.AddrPort().Port())})
			}()
			defer func() { cancel(); <-done }()
			tx, err := queryOf(at)
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			if b, ok = withTx(b, tx); ok {
				// The guard takes it for the reply it is.
				before := n.drops.unsolicited.Load()
				defer func() {
					if n.drops.unsolicited.Load() != before {
						t.Errorf("%q was dropped as a reply to no query", b)
					}
				}()
			}
		}
		if _, err = at.WriteTo(b, pc.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if err := honestCheck(sn, addr(128<<16), to); err != nil {
			t.Fatalf("after %q: %v", b, err)
		}
		if c := libLog.n.Load() - logged; c > 0 {
			t.Fatalf("after %q: the library wrote %d lines to its global logger (the first it ever wrote: %s)", b, c, *libLog.first.Load())
		}
	})
}

// queryOf waits for the node's query on c and returns its transaction id.
func queryOf(c *simnet.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(honestWait))
	buf := make([]byte, 1<<16)
	for {
		k, _, err := c.ReadFrom(buf)
		if err != nil {
			return "", fmt.Errorf("no query from the node: %w", err)
		}
		var m krpc.Msg
		if bencode.Unmarshal(buf[:k], &m) == nil && m.Y == "q" {
			return m.T, nil
		}
	}
}

// withTx is the bencoded dictionary b with the value of its (last) top-level "t" key, a
// string, replaced by tx, and true; b and false if it has none.
func withTx(b []byte, tx string) ([]byte, bool) {
	start, end := -1, -1
	for i := 1; i < len(b) && b[i] != 'e'; {
		key, next, ok := bstring(b, i)
		if !ok {
			return b, false
		}
		j, ok := skip(b, next, 0)
		if !ok {
			return b, false
		}
		if key == "t" {
			start, end = next, j
		}
		i = j
	}
	if start < 0 {
		return b, false
	}
	return slices.Concat(b[:start], []byte(strconv.Itoa(len(tx))+":"+tx), b[end:]), true
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
