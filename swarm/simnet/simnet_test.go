package simnet_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/swarm/simnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listen opens a Conn at s (IP:PORT), closed when the test ends.
func listen(t *testing.T, n *simnet.Network, s string) *simnet.Conn {
	t.Helper()
	c, err := n.Listen(netip.MustParseAddrPort(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func newNet(t *testing.T, cfg simnet.Config) *simnet.Network {
	t.Helper()
	n := simnet.New(cfg)
	t.Cleanup(func() { n.Close() })
	return n
}

// read reads one datagram within 5 s.
func read(t *testing.T, c *simnet.Conn) ([]byte, netip.AddrPort) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2048)
	n, from, err := c.ReadFrom(b)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b[:n], from.(*net.UDPAddr).AddrPort()
}

// TestDirect: with no latency a datagram is in the receiver's queue when WriteTo returns.
func TestDirect(t *testing.T) {
	n := newNet(t, simnet.Config{})
	a, b := listen(t, n, "127.0.0.2:1000"), listen(t, n, "127.0.0.3:1000")
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := b.SetReadDeadline(time.Now()); err != nil { // nothing to wait for
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	k, from, err := b.ReadFrom(buf)
	if err != nil {
		t.Fatalf("datagram not there at once: %v", err)
	}
	if string(buf[:k]) != "hel" || from.String() != "127.0.0.2:1000" {
		t.Errorf("read %q from %v, want \"hel\" (cut to the buffer) from 127.0.0.2:1000", buf[:k], from)
	}
	if _, _, err := b.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read of an empty queue past its deadline: %v", err)
	}
	if s := n.Stats(); s != (simnet.Stats{Sent: 1, Delivered: 1, Bytes: 5}) {
		t.Errorf("stats %+v", s)
	}
}

// stamp is a datagram carrying its index and send time.
func stamp(i int) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(i))
	binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
	return b
}

func unstamp(b []byte) (int, time.Duration) {
	return int(binary.BigEndian.Uint64(b)), time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))))
}

// TestLatencyOrder: with a latency and no jitter, every datagram takes at least the latency
// and they arrive in the order they were sent.
func TestLatencyOrder(t *testing.T) {
	const latency = 20 * time.Millisecond
	n := newNet(t, simnet.Config{Latency: latency})
	a, b := listen(t, n, "127.0.0.2:1000"), listen(t, n, "127.0.0.3:1000")
	for i := range 20 {
		if _, err := a.WriteTo(stamp(i), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if n.InFlight() == 0 {
		t.Error("nothing in flight right after the writes")
	}
	var worst time.Duration
	for i := range 20 {
		d, _ := read(t, b)
		j, took := unstamp(d)
		if j != i {
			t.Fatalf("datagram %d arrived %dth", j, i)
		}
		if took < latency {
			t.Fatalf("datagram %d took %v, less than the latency %v", j, took, latency)
		}
		worst = max(worst, took)
	}
	t.Logf("20 datagrams at %v latency: slowest took %v", latency, worst)
}

// TestJitter: each datagram's delay is the latency plus up to the jitter, drawn anew for
// each, so some overtake others.
func TestJitter(t *testing.T) {
	const latency, jitter, count = 10 * time.Millisecond, 30 * time.Millisecond, 200
	n := newNet(t, simnet.Config{Latency: latency, Jitter: jitter, Seed: 7})
	a, b := listen(t, n, "127.0.0.2:1000"), listen(t, n, "127.0.0.3:1000")
	for i := range count {
		if _, err := a.WriteTo(stamp(i), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	lo, hi := time.Hour, time.Duration(0)
	overtaken, last := 0, -1
	for range count {
		d, _ := read(t, b)
		j, took := unstamp(d)
		if took < latency {
			t.Fatalf("datagram %d took %v, less than the latency %v", j, took, latency)
		}
		lo, hi = min(lo, took), max(hi, took)
		if j < last {
			overtaken++
		}
		last = max(last, j)
	}
	t.Logf("%d datagrams, latency %v + jitter %v: delays %v..%v, %d arrived after a later one", count, latency, jitter, lo, hi, overtaken)
	// The lower end is exact; the upper end allows for a busy machine.
	if lo > latency+jitter/4 || hi < latency+jitter*3/4 {
		t.Errorf("delays %v..%v do not spread over %v..%v", lo, hi, latency, latency+jitter)
	}
	if hi > latency+jitter+500*time.Millisecond {
		t.Errorf("a datagram took %v", hi)
	}
	if overtaken == 0 {
		t.Error("no datagram overtook another")
	}
}

// TestCounts: datagrams to nobody and past a full queue are dropped and counted.
func TestCounts(t *testing.T) {
	n := newNet(t, simnet.Config{Queue: 4})
	a, b := listen(t, n, "127.0.0.2:1000"), listen(t, n, "127.0.0.3:1000")
	for range 6 {
		if _, err := a.WriteTo([]byte("0123456789"), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 1}); err != nil {
		t.Fatalf("a write to nobody failed: %v", err)
	}
	if s := n.Stats(); s != (simnet.Stats{Sent: 7, Delivered: 4, Bytes: 40, Dropped: 3}) {
		t.Errorf("stats %+v, want 7 sent, 4 delivered (40 bytes), 3 dropped", s)
	}
	for range 4 {
		read(t, b)
	}
	if _, err := a.WriteTo([]byte("y"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if d, _ := read(t, b); string(d) != "y" {
		t.Errorf("read %q after draining the queue", d)
	}
}

// TestListen: port 0 picks free ports; an address in use is refused, and free again once
// its Conn closes.
func TestListen(t *testing.T) {
	n := newNet(t, simnet.Config{})
	seen := map[netip.AddrPort]bool{}
	for range 5 {
		c := listen(t, n, "127.0.0.2:0")
		if c.AddrPort().Port() == 0 || seen[c.AddrPort()] {
			t.Fatalf("port 0 gave %v", c.AddrPort())
		}
		seen[c.AddrPort()] = true
	}
	c := listen(t, n, "127.0.0.3:6881")
	if _, err := n.Listen(netip.MustParseAddrPort("127.0.0.3:6881")); !errors.Is(err, simnet.ErrInUse) {
		t.Errorf("second listen on 127.0.0.3:6881: %v", err)
	}
	c.Close()
	listen(t, n, "127.0.0.3:6881")
	if _, err := n.Listen(netip.AddrPort{}); err == nil {
		t.Error("listen on no address accepted")
	}
	if _, err := n.Listen(netip.MustParseAddrPort("0.0.0.0:1")); err == nil {
		t.Error("listen on 0.0.0.0 accepted")
	}
}

// TestClose: closing a Conn ends a read in progress; closing the network drops what is on
// its way, closes every Conn and stops the scheduler (goleak checks).
func TestClose(t *testing.T) {
	n := simnet.New(simnet.Config{Latency: time.Hour})
	a, err := n.Listen(netip.MustParseAddrPort("127.0.0.2:1000"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.Listen(netip.MustParseAddrPort("127.0.0.3:1000"))
	if err != nil {
		t.Fatal(err)
	}
	reads := make(chan error, 2)
	for _, c := range []*simnet.Conn{a, b} {
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 10))
			reads <- err
		}()
	}
	if _, err := a.WriteTo([]byte("late"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := <-reads; !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on a closed conn: %v", err)
	}
	if _, err := a.WriteTo([]byte("x"), b.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write on a closed conn: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-reads; !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on a conn of a closed network: %v", err)
	}
	if s := n.Stats(); s.Sent != 1 || s.Delivered != 0 || s.Dropped != 1 {
		t.Errorf("stats %+v: the datagram on its way should be dropped", s)
	}
	if _, err := n.Listen(netip.MustParseAddrPort("127.0.0.4:1")); err == nil {
		t.Error("listen on a closed network accepted")
	}
}

// TestConcurrent: 20 conns each send 10 datagrams to each of the others while they read,
// with jitter; every datagram arrives.
func TestConcurrent(t *testing.T) {
	const conns, each = 20, 10 * 19
	n := newNet(t, simnet.Config{Latency: time.Millisecond, Jitter: time.Millisecond, Queue: conns * each})
	cs := make([]*simnet.Conn, conns)
	for i := range cs {
		cs[i] = listen(t, n, fmt.Sprintf("127.0.1.%d:7000", i+1))
	}
	var got sync.WaitGroup
	counts := make([]int, conns)
	for i, c := range cs {
		got.Go(func() {
			buf := make([]byte, 64)
			for counts[i] < each {
				if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
					t.Error(err)
					return
				}
				if _, _, err := c.ReadFrom(buf); err != nil {
					t.Errorf("conn %d after %d datagrams: %v", i, counts[i], err)
					return
				}
				counts[i]++
			}
		})
	}
	var sent sync.WaitGroup
	for i, c := range cs {
		sent.Go(func() {
			for j := range each {
				to := cs[(i+1+j%(conns-1))%conns]
				if _, err := c.WriteTo([]byte("ping"), to.LocalAddr()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	sent.Wait()
	got.Wait()
	if s := n.Stats(); s.Sent != conns*each || s.Delivered != conns*each || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}
