// Package transport carries the flood overlay's streams: real TCP sockets (ListenTCP) or an
// in-memory network (NewNetwork) that runs inside a testing/synctest bubble, so the same node
// code runs a swarm on loopback and a simulation of thousands of nodes.
package transport

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Transport opens and accepts the overlay's connections.
type Transport interface {
	// Dial connects to the node listening on addr.
	Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
	// Accept waits for the next incoming connection; it fails once the transport is closed.
	Accept() (net.Conn, error)
	// Addr is where others reach this transport.
	Addr() netip.AddrPort
	// Close stops accepting; Accept returns ErrClosed. Connections already made stay open.
	Close() error
}

// Poller is implemented by connections that can tell when they have something to read, so
// that a reader need not park a goroutine on Read between frames: the in-memory network's
// connections are. It is what lets one process hold a simulated overlay of 100,000 nodes
// and their 600,000 link ends.
type Poller interface {
	// Notify sets f to be called, from another goroutine, whenever the connection may have
	// become readable: bytes arrived, the other end closed, or this end was closed. f must
	// not block. Calls may be spurious; Ready says whether a Read would return at once.
	Notify(f func())
	// Ready reports whether a Read would return without waiting: bytes have arrived, the
	// stream has ended or failed, or the read deadline has passed.
	Ready() bool
}

// ErrClosed is returned by Accept and Dial after Close.
var ErrClosed = errors.New("transport closed")

// ErrRefused is returned by an in-memory Dial to an address nobody listens on.
var ErrRefused = errors.New("connection refused")

// tcp is a Transport over TCP sockets.
type tcp struct {
	ln     *net.TCPListener
	addr   netip.AddrPort
	dialer net.Dialer
}

// ListenTCP listens on addr, HOST:PORT (port 0: any free port). Dials leave from the listen
// IP, so that on one machine each node keeps its own loopback address.
func ListenTCP(addr string) (Transport, error) {
	network := "tcp4"
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.To4() == nil {
			network = "tcp6"
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("flood: %w", err)
	}
	tl := ln.(*net.TCPListener)
	ap := tl.Addr().(*net.TCPAddr).AddrPort()
	ip := ap.Addr().Unmap()
	t := &tcp{ln: tl}
	if ip.IsUnspecified() {
		if ip.Is6() {
			ip = netip.IPv6Loopback()
		} else {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
	} else {
		t.dialer.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
	}
	t.addr = netip.AddrPortFrom(ip, ap.Port())
	return t, nil
}

func (t *tcp) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	return t.dialer.DialContext(ctx, "tcp", addr.String())
}

func (t *tcp) Accept() (net.Conn, error) {
	c, err := t.ln.Accept()
	if errors.Is(err, net.ErrClosed) {
		return nil, ErrClosed
	}
	return c, err
}

func (t *tcp) Addr() netip.AddrPort { return t.addr }

func (t *tcp) Close() error { return t.ln.Close() }

// Network is an in-memory network of transports. Its connections are buffered pipes (up to
// 1 MiB in flight each way) whose bytes arrive a delay after they were written: the
// network's latency plus a share of its jitter drawn once per direction of each connection
// (uniform in [0, jitter)), so each link has a delay of its own and a stream stays in order.
// They work inside a testing/synctest bubble when the network's users run there, and with a
// latency, on the bubble's clock, messages arrive in the order a real network would deliver
// them: by hops travelled. A Network is safe for concurrent use.
type Network struct {
	latency, jitter atomic.Int64 // nanoseconds

	mu        sync.Mutex
	rng       *rand.Rand // jitter shares; seeded, so a synctest bubble draws the same ones
	listeners map[netip.AddrPort]*memListener
	nextPort  map[netip.Addr]uint16
}

// SetDelay sets the one-way delay of the network's links: latency plus up to jitter. It
// may be changed at any time (build a large network fast with no delay, then measure with
// one): a byte written from then on takes the new delay, and each connection keeps the
// share of the jitter it drew. Negative values count as 0.
func (n *Network) SetDelay(latency, jitter time.Duration) {
	n.latency.Store(int64(max(latency, 0)))
	n.jitter.Store(int64(max(jitter, 0)))
}

// delay is the current delay of a direction whose jitter share is u.
func (n *Network) delay(u float64) time.Duration {
	return time.Duration(n.latency.Load()) + time.Duration(u*float64(n.jitter.Load()))
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{
		rng:       rand.New(rand.NewPCG(1, 2)),
		listeners: make(map[netip.AddrPort]*memListener),
		nextPort:  make(map[netip.Addr]uint16),
	}
}

// Listen attaches a transport at addr; port 0 picks a free one. An address in use is an error.
func (n *Network) Listen(addr netip.AddrPort) (Transport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr.Port() == 0 {
		p := n.nextPort[addr.Addr()]
		for {
			p++
			if p == 0 {
				return nil, fmt.Errorf("flood: listen on %s: no free port", addr.Addr())
			}
			if _, used := n.listeners[netip.AddrPortFrom(addr.Addr(), p)]; !used {
				break
			}
		}
		n.nextPort[addr.Addr()] = p
		addr = netip.AddrPortFrom(addr.Addr(), p)
	}
	if _, used := n.listeners[addr]; used {
		return nil, fmt.Errorf("flood: listen on %s: address in use", addr)
	}
	l := &memListener{net: n, addr: addr, incoming: make(chan net.Conn), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

// memListener is a Transport on a Network.
type memListener struct {
	net      *Network
	addr     netip.AddrPort
	incoming chan net.Conn
	done     chan struct{}
	once     sync.Once
}

// Dial hands one end of a new pipe to the listener at addr. It fails at once when nobody
// listens there, and waits (until ctx ends) for the listener to accept.
func (l *memListener) Dial(ctx context.Context, addr netip.AddrPort) (net.Conn, error) {
	select {
	case <-l.done:
		return nil, ErrClosed
	default:
	}
	l.net.mu.Lock()
	dst := l.net.listeners[addr]
	u1, u2 := l.net.rng.Float64(), l.net.rng.Float64()
	l.net.mu.Unlock()
	if dst == nil {
		return nil, &net.OpError{Op: "dial", Net: "mem", Addr: addrOf(addr), Err: ErrRefused}
	}
	// The dialer's address is its listen address: one IP per node, as over TCP.
	mine, theirs := newPipe(l.net, u1, u2, addrOf(l.addr), addrOf(addr))
	a, b := mine, theirs
	select {
	case dst.incoming <- theirs:
		return mine, nil
	case <-dst.done:
	case <-ctx.Done():
		a.Close()
		b.Close()
		return nil, ctx.Err()
	}
	a.Close()
	b.Close()
	return nil, &net.OpError{Op: "dial", Net: "mem", Addr: addrOf(addr), Err: ErrRefused}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.incoming:
		return c, nil
	case <-l.done:
		return nil, ErrClosed
	}
}

func (l *memListener) Addr() netip.AddrPort { return l.addr }

// Close detaches the listener from the network: later dials to its address fail.
func (l *memListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.net.mu.Lock()
		if l.net.listeners[l.addr] == l {
			delete(l.net.listeners, l.addr)
		}
		l.net.mu.Unlock()
	})
	return nil
}

func addrOf(ap netip.AddrPort) net.Addr { return net.TCPAddrFromAddrPort(ap) }
