// Package simnet is an in-memory datagram network for simulations: each Conn is a
// net.PacketConn at an address like 127.0.3.7:6881, and every datagram written to another
// Conn arrives after Latency plus a uniform random share of Jitter, drawn per datagram, so
// datagrams can overtake each other as they do over UDP. With no latency at all, a datagram
// is delivered during the write.
//
// It lets protocol code written for UDP sockets (the DHT) run many thousands of nodes in one
// process, with no sockets and no file descriptors. One goroutine per network delivers
// delayed datagrams; it stops on Close.
package simnet

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueue is how many datagrams a Conn holds unread before it drops more, like a UDP
// socket's receive buffer.
const DefaultQueue = 1024

// Config is how a Network delays datagrams.
type Config struct {
	// Latency is every datagram's delay; Jitter adds a uniform random delay in [0, Jitter).
	// Negative values count as zero.
	Latency, Jitter time.Duration
	// Seed seeds the jitter.
	Seed uint64
	// Queue is how many datagrams a Conn holds unread before it drops more; 0 means
	// DefaultQueue.
	Queue int
}

// Stats counts a network's datagrams since it was made.
type Stats struct {
	Sent      int64 // datagrams written
	Delivered int64 // datagrams put in a reader's queue
	Bytes     int64 // bytes of the delivered datagrams
	// Dropped datagrams were sent to an address nobody listens on, to a full queue, or
	// were still on their way when the network or their receiver closed.
	Dropped int64
}

// Network is an in-memory datagram network. It is safe for concurrent use.
type Network struct {
	queue int

	mu       sync.Mutex
	conns    map[netip.AddrPort]*Conn
	latency  time.Duration
	jitter   time.Duration
	rng      *rand.Rand
	pending  packets // datagrams on their way, soonest first
	seq      uint64
	closed   bool
	nextPort map[netip.Addr]uint16

	wake chan struct{} // the scheduler has a new soonest datagram to look at
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	sent, delivered, bytes, dropped atomic.Int64
}

// packet is a datagram on its way.
type packet struct {
	at       time.Time
	seq      uint64 // write order, to break ties
	from, to netip.AddrPort
	b        []byte
}

// New starts a network.
func New(cfg Config) *Network {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultQueue
	}
	n := &Network{
		queue:    cfg.Queue,
		conns:    make(map[netip.AddrPort]*Conn),
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x51e7)),
		nextPort: make(map[netip.Addr]uint16),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	n.SetLatency(cfg.Latency, cfg.Jitter)
	n.wg.Add(1)
	go n.schedule()
	return n
}

// SetLatency changes the delay of the datagrams written from now on. Negative values count
// as zero.
func (n *Network) SetLatency(latency, jitter time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.latency, n.jitter = max(latency, 0), max(jitter, 0)
}

// Stats counts the network's datagrams so far.
func (n *Network) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Delivered: n.delivered.Load(), Bytes: n.bytes.Load(), Dropped: n.dropped.Load()}
}

// InFlight is how many datagrams are on their way.
func (n *Network) InFlight() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pending)
}

// ErrInUse: an address already has a Conn.
var ErrInUse = errors.New("address already in use")

// Listen opens a Conn at ap. Port 0 picks a port of ap's address that is free.
func (n *Network) Listen(ap netip.AddrPort) (*Conn, error) {
	ip := ap.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return nil, fmt.Errorf("simnet: listen on %v: want an IP address", ap)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("simnet: listen on %v: %w", ap, net.ErrClosed)
	}
	port := ap.Port()
	if port == 0 {
		for range 1 << 16 {
			p := n.nextPort[ip]
			if p < 1024 {
				p = 1024
			}
			n.nextPort[ip] = p + 1
			if _, used := n.conns[netip.AddrPortFrom(ip, p)]; !used {
				port = p
				break
			}
		}
		if port == 0 {
			return nil, fmt.Errorf("simnet: listen on %v: no free port", ip)
		}
	}
	ap = netip.AddrPortFrom(ip, port)
	if _, used := n.conns[ap]; used {
		return nil, fmt.Errorf("simnet: listen on %v: %w", ap, ErrInUse)
	}
	c := &Conn{net: n, addr: ap, udp: net.UDPAddrFromAddrPort(ap), wake: make(chan struct{}, 1), done: make(chan struct{})}
	n.conns[ap] = c
	return c, nil
}

// Close stops the network: datagrams on their way are dropped, every Conn still open is
// closed (its reads and writes fail with net.ErrClosed), and the scheduler goroutine has
// returned when Close does.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.dropped.Add(int64(len(n.pending)))
	n.pending = nil
	conns := make([]*Conn, 0, len(n.conns))
	for _, c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	close(n.done)
	n.wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

// send routes one datagram: at once with no delay, else into the scheduler's queue.
func (n *Network) send(from, to netip.AddrPort, b []byte) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return net.ErrClosed
	}
	n.sent.Add(1)
	delay := n.latency
	if n.jitter > 0 {
		delay += time.Duration(n.rng.Int64N(int64(n.jitter)))
	}
	if delay <= 0 {
		c := n.conns[to]
		n.mu.Unlock()
		n.deliver(c, from, b)
		return nil
	}
	n.seq++
	heap.Push(&n.pending, &packet{at: time.Now().Add(delay), seq: n.seq, from: from, to: to, b: b})
	soonest := n.pending[0].seq == n.seq
	n.mu.Unlock()
	if soonest {
		signal(n.wake)
	}
	return nil
}

// deliver puts a datagram in c's queue; c nil or closed, or its queue full, drops it.
func (n *Network) deliver(c *Conn, from netip.AddrPort, b []byte) {
	if c == nil || !c.push(from, b) {
		n.dropped.Add(1)
		return
	}
	n.delivered.Add(1)
	n.bytes.Add(int64(len(b)))
}

// schedule delivers the delayed datagrams when they are due, until Close.
func (n *Network) schedule() {
	defer n.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var due []*packet
	var to []*Conn
	for {
		n.mu.Lock()
		now := time.Now()
		due, to = due[:0], to[:0]
		for len(n.pending) > 0 && !n.pending[0].at.After(now) {
			p := heap.Pop(&n.pending).(*packet)
			due = append(due, p)
			to = append(to, n.conns[p.to])
		}
		wait := time.Duration(-1)
		if len(n.pending) > 0 {
			wait = n.pending[0].at.Sub(now)
		}
		n.mu.Unlock()
		for i, p := range due {
			n.deliver(to[i], p.from, p.b)
			due[i], to[i] = nil, nil
		}
		if len(due) > 0 {
			continue // time has passed while delivering
		}
		var tick <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tick = timer.C
		}
		select {
		case <-n.done:
			return
		case <-n.wake:
		case <-tick:
		}
		timer.Stop()
	}
}

// signal wakes whoever waits on c, if nobody has yet.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// packets is a min-heap of datagrams by due time, then write order.
type packets []*packet

func (h packets) Len() int { return len(h) }
func (h packets) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h packets) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *packets) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *packets) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// Conn is one address of a Network: a net.PacketConn whose addresses are *net.UDPAddr.
type Conn struct {
	net  *Network
	addr netip.AddrPort
	udp  *net.UDPAddr

	mu     sync.Mutex
	q      []datagram // unread, oldest first
	head   int
	closed bool
	rdl    time.Time // read deadline
	wake   chan struct{}
	done   chan struct{} // closed by Close
}

type datagram struct {
	from netip.AddrPort
	b    []byte
}

var _ net.PacketConn = (*Conn)(nil)

// push queues a datagram for reading; false when c is closed or its queue is full.
func (c *Conn) push(from netip.AddrPort, b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.q)-c.head >= c.net.queue {
		return false
	}
	if c.head > 0 && c.head == len(c.q) {
		c.q, c.head = c.q[:0], 0
	}
	c.q = append(c.q, datagram{from, b})
	signal(c.wake)
	return true
}

// AddrPort is c's address.
func (c *Conn) AddrPort() netip.AddrPort { return c.addr }

// LocalAddr is c's address, a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return c.udp }

// ReadFrom waits for the next datagram and copies it into b (cut to len(b), as UDP does).
// The sender's address is a *net.UDPAddr.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, nil, c.opErr("read", net.ErrClosed)
		}
		if c.head < len(c.q) {
			d := c.q[c.head]
			c.q[c.head] = datagram{}
			c.head++
			if c.head < len(c.q) {
				signal(c.wake) // another reader may be waiting
			}
			c.mu.Unlock()
			return copy(b, d.b), net.UDPAddrFromAddrPort(d.from), nil
		}
		dl := c.rdl
		c.mu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			wait := time.Until(dl)
			if wait <= 0 {
				return 0, nil, c.opErr("read", os.ErrDeadlineExceeded)
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-c.wake:
		case <-c.done:
		case <-expired:
		}
	}
}

// WriteTo sends b to addr, a *net.UDPAddr (or any net.Addr whose String is IP:PORT). A
// datagram to an address nobody listens on is dropped silently, as over UDP.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	to, err := addrPort(addr)
	if err != nil {
		return 0, c.opErr("write", err)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if err := c.net.send(c.addr, to, append([]byte(nil), b...)); err != nil {
		return 0, c.opErr("write", err)
	}
	return len(b), nil
}

func addrPort(a net.Addr) (netip.AddrPort, error) {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	if a == nil {
		return netip.AddrPort{}, errors.New("no address")
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "simnet", Addr: c.udp, Err: err}
}

// Close closes c: its address is free again, datagrams waiting in its queue are dropped,
// and a ReadFrom in progress returns net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	unread := len(c.q) - c.head
	c.q, c.head = nil, 0
	close(c.done)
	c.mu.Unlock()
	c.net.dropped.Add(int64(unread))
	c.net.mu.Lock()
	if c.net.conns[c.addr] == c {
		delete(c.net.conns, c.addr)
	}
	c.net.mu.Unlock()
	return nil
}

// SetDeadline sets the read deadline; writes never block.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline makes ReadFrom fail with os.ErrDeadlineExceeded once t has passed; the
// zero time means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	signal(c.wake) // a reader waiting reads the deadline again
	return nil
}

// SetWriteDeadline does nothing: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }
