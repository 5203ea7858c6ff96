package transport_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/peer/flood/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exchange dials b from a, sends a line each way and checks the addresses both ends see.
func exchange(t *testing.T, a, b transport.Transport) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := b.Accept()
		if err != nil {
			errc <- err
			return
		}
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, err := a.Dial(ctx, b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	var c2 net.Conn
	select {
	case c2 = <-accepted:
	case err := <-errc:
		t.Fatal(err)
	}
	defer c2.Close()
	if got := c2.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != a.Addr().Addr() {
		t.Errorf("accepted a connection from %v, want the dialer's IP %v", got, a.Addr().Addr())
	}
	go func() { c1.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c2, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	go func() { c2.Write([]byte("pong")) }()
	if _, err := io.ReadFull(c1, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v", buf, err)
	}
}

func TestTCP(t *testing.T) {
	a, err := transport.ListenTCP("127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := transport.ListenTCP("127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	if b.Addr().Addr() != netip.MustParseAddr("127.0.0.3") || b.Addr().Port() == 0 {
		t.Fatalf("Addr %v", b.Addr())
	}
	exchange(t, a, b)
	b.Close()
	if _, err := b.Accept(); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Accept after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Dial(context.Background(), b.Addr()); err == nil {
		t.Error("dial to a closed listener succeeded")
	}
}

func TestTCPEveryInterface(t *testing.T) {
	a, err := transport.ListenTCP(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Addr().Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("Addr %v, want 127.0.0.1", a.Addr())
	}
}

func TestMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		a, err := nw.Listen(netip.MustParseAddrPort("127.0.0.2:0"))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := nw.Listen(netip.MustParseAddrPort("127.0.0.3:7000"))
		if err != nil {
			t.Fatal(err)
		}
		if a.Addr().Port() == 0 || b.Addr() != netip.MustParseAddrPort("127.0.0.3:7000") {
			t.Fatalf("addrs %v %v", a.Addr(), b.Addr())
		}
		if _, err := nw.Listen(b.Addr()); err == nil {
			t.Error("two listeners on one address")
		}
		exchange(t, a, b)

		// Dials to nobody fail at once, without time passing.
		start := time.Now()
		if _, err := a.Dial(context.Background(), netip.MustParseAddrPort("127.0.0.9:1")); !errors.Is(err, transport.ErrRefused) {
			t.Errorf("dial to nobody: %v", err)
		}
		b.Close()
		if _, err := a.Dial(context.Background(), b.Addr()); !errors.Is(err, transport.ErrRefused) {
			t.Errorf("dial to a closed listener: %v", err)
		}
		if _, err := b.Accept(); !errors.Is(err, transport.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
		if time.Since(start) != 0 {
			t.Errorf("failed dials took %v of fake time", time.Since(start))
		}

		// A dial that nobody accepts waits for its context.
		c, err := nw.Listen(netip.MustParseAddrPort("127.0.0.4:1"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := a.Dial(ctx, c.Addr()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("unaccepted dial: %v", err)
		}

		// Read deadlines run on the bubble's clock.
		go func() { c.Accept() }()
		conn, err := a.Dial(context.Background(), c.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(time.Minute))
		start = time.Now()
		var ne net.Error
		if _, err := conn.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("read: %v, want a timeout", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("deadline after %v", d)
		}
	})
}

// TestMemoryLatency: bytes arrive the latency after they are written, in order; a closed
// end gives the other EOF once it has read everything.
func TestMemoryLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		nw.SetDelay(10*time.Millisecond, 0)
		a, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.2:1"))
		b, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.3:1"))
		defer a.Close()
		defer b.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := b.Accept()
			accepted <- c
		}()
		c1, err := a.Dial(context.Background(), b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c2 := <-accepted
		start := time.Now()
		c1.Write([]byte("ab"))
		time.Sleep(5 * time.Millisecond)
		c1.Write([]byte("cd"))
		c1.Close()
		got, err := io.ReadAll(c2)
		if err != nil || string(got) != "abcd" {
			t.Fatalf("read %q, %v", got, err)
		}
		if d := time.Since(start); d != 15*time.Millisecond {
			t.Errorf("the last byte arrived after %v, want 15ms", d)
		}
		if _, err := c2.Write([]byte("x")); err == nil {
			t.Error("write to a closed peer succeeded")
		}
		c2.Close()
	})
}

// TestMemoryJitter: each direction of each connection has a delay of its own, between the
// latency and latency+jitter, the same for every write (so a stream stays in order); a new
// delay set on the network applies to the next writes.
func TestMemoryJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const latency, jitter = 10 * time.Millisecond, 20 * time.Millisecond
		nw := transport.NewNetwork()
		nw.SetDelay(latency, jitter)
		a, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.2:1"))
		b, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.3:1"))
		defer a.Close()
		defer b.Close()
		// oneWay is how long one byte takes from c1 to c2.
		oneWay := func(c1, c2 net.Conn) time.Duration {
			start := time.Now()
			if _, err := c1.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c2, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			return time.Since(start)
		}
		delays := map[time.Duration]bool{}
		for range 8 {
			accepted := make(chan net.Conn, 1)
			go func() {
				c, _ := b.Accept()
				accepted <- c
			}()
			c1, err := a.Dial(context.Background(), b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			c2 := <-accepted
			d := oneWay(c1, c2)
			if d < latency || d >= latency+jitter {
				t.Errorf("a byte took %v, want %v..%v", d, latency, latency+jitter)
			}
			if again := oneWay(c1, c2); again != d {
				t.Errorf("the same direction took %v, then %v", d, again)
			}
			delays[d] = true
			delays[oneWay(c2, c1)] = true

			// A burst of writes arrives in order, each after the same delay.
			start := time.Now()
			for i := range 10 {
				c1.Write([]byte{byte(i)})
			}
			got := make([]byte, 10)
			if _, err := io.ReadFull(c2, got); err != nil || string(got) != "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09" {
				t.Errorf("burst read %v, %v", got, err)
			}
			if time.Since(start) != d {
				t.Errorf("a burst took %v, want %v", time.Since(start), d)
			}
			c1.Close()
			c2.Close()
		}
		if len(delays) < 8 {
			t.Errorf("16 directions drew only %d distinct delays", len(delays))
		}

		// Switched off, then on again, for the next writes.
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := b.Accept()
			accepted <- c
		}()
		c1, err := a.Dial(context.Background(), b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c2 := <-accepted
		defer c1.Close()
		defer c2.Close()
		nw.SetDelay(0, 0)
		if d := oneWay(c1, c2); d != 0 {
			t.Errorf("with no delay a byte took %v", d)
		}
		nw.SetDelay(time.Second, 0)
		if d := oneWay(c1, c2); d != time.Second {
			t.Errorf("with a delay of 1s a byte took %v", d)
		}
	})
}

// TestMemoryPoller: an in-memory connection calls its Notify callback when bytes arrive
// (after the delay, not before), when the other end closes, and when it is closed itself;
// Ready says whether a Read would return at once.
func TestMemoryPoller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		nw.SetDelay(10*time.Millisecond, 0)
		a, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.2:1"))
		b, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.3:1"))
		defer a.Close()
		defer b.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := b.Accept()
			accepted <- c
		}()
		c1, err := a.Dial(context.Background(), b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		c2 := <-accepted
		p, ok := c2.(transport.Poller)
		if !ok {
			t.Fatal("an in-memory connection is not a Poller")
		}
		calls := make(chan time.Duration, 10)
		start := time.Now()
		p.Notify(func() { calls <- time.Since(start) })
		if p.Ready() {
			t.Error("ready with nothing written")
		}
		c1.Write([]byte("abc"))
		synctest.Wait()
		if p.Ready() || len(calls) != 0 {
			t.Errorf("ready (%v) or notified (%d) before the delay", p.Ready(), len(calls))
		}
		if d := <-calls; d != 10*time.Millisecond {
			t.Errorf("notified after %v, want 10ms", d)
		}
		if !p.Ready() {
			t.Error("not ready once the bytes arrived")
		}
		if _, err := io.ReadFull(c2, make([]byte, 3)); err != nil {
			t.Fatal(err)
		}
		if p.Ready() {
			t.Error("ready with everything read")
		}
		c1.Close()
		if d := <-calls; d != 10*time.Millisecond {
			t.Errorf("the other end's close notified after %v", d)
		}
		if !p.Ready() {
			t.Error("not ready at EOF")
		}
		if _, err := c2.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("read %v, want EOF", err)
		}
		c2.Close()
		<-calls
		if !p.Ready() {
			t.Error("not ready once closed")
		}

		// A read deadline that has passed makes a connection ready.
		go func() {
			c, _ := b.Accept()
			accepted <- c
		}()
		c3, err := a.Dial(context.Background(), b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c3.Close()
		c4 := <-accepted
		defer c4.Close()
		c4.SetReadDeadline(time.Now().Add(time.Second))
		if c4.(transport.Poller).Ready() {
			t.Error("ready before the deadline")
		}
		time.Sleep(time.Second)
		if !c4.(transport.Poller).Ready() {
			t.Error("not ready at the deadline")
		}
	})
}

// TestMemoryCloseWrite: an end whose writing half is closed can still read; the other end
// reads what was written, then EOF, and can still write.
func TestMemoryCloseWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := transport.NewNetwork()
		nw.SetDelay(time.Millisecond, 0)
		a, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.2:1"))
		b, _ := nw.Listen(netip.MustParseAddrPort("127.0.0.3:1"))
		defer a.Close()
		defer b.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := b.Accept()
			accepted <- c
		}()
		c1, err := a.Dial(context.Background(), b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		c2 := <-accepted
		defer c2.Close()
		c1.Write([]byte("bye"))
		if err := c1.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.Write([]byte("x")); err == nil {
			t.Error("a write after CloseWrite succeeded")
		}
		if got, err := io.ReadAll(c2); err != nil || string(got) != "bye" {
			t.Errorf("read %q, %v; want bye, then EOF", got, err)
		}
		c2.Write([]byte("ok"))
		got := make([]byte, 2)
		if _, err := io.ReadFull(c1, got); err != nil || string(got) != "ok" {
			t.Errorf("the half-closed end read %q, %v", got, err)
		}
	})
}
