package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// pipeBuffer is how many bytes may wait in one direction of a pipe before writes block.
const pipeBuffer = 1 << 20

// chunk is one write, readable from at on.
type chunk struct {
	b  []byte
	at time.Time
}

// half is one direction of a pipe: what one end writes and the other reads.
type half struct {
	mu      sync.Mutex
	q       []chunk
	size    int
	rclosed bool          // the reading end closed
	wclosed bool          // the writing end closed: EOF once q is read
	wake    chan struct{} // the reader has something to look at
	space   chan struct{} // the writer has something to look at
	notify  func()        // the reader's Poller callback, or nil
}

func newHalf() *half { return &half{wake: make(chan struct{}, 1), space: make(chan struct{}, 1)} }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pipeConn is one end of an in-memory, buffered stream whose bytes arrive the network's
// delay after they were written. It blocks only on channels and timers, so a testing/synctest bubble
// sees its readers and writers as durably blocked.
type pipeConn struct {
	in, out       *half
	net           *Network
	jitter        float64 // this end's writes' share of the network's jitter
	local, remote net.Addr

	mu       sync.Mutex
	rdl, wdl time.Time
	once     sync.Once
}

var _ Poller = (*pipeConn)(nil)

// newPipe returns the two ends of a pipe on nw, between a and b; what a writes takes the
// jitter share ua, what b writes ub.
func newPipe(nw *Network, ua, ub float64, a, b net.Addr) (*pipeConn, *pipeConn) {
	ab, ba := newHalf(), newHalf()
	return &pipeConn{in: ba, out: ab, net: nw, jitter: ua, local: a, remote: b},
		&pipeConn{in: ab, out: ba, net: nw, jitter: ub, local: b, remote: a}
}

func (c *pipeConn) deadlines() (r, w time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rdl, c.wdl
}

// wait blocks until ch is signalled, d passes (d < 0: forever) or the deadline dl (zero:
// none); it reports false when the deadline passed.
func wait(ch chan struct{}, d time.Duration, dl time.Time) bool {
	now := time.Now()
	if !dl.IsZero() {
		if !dl.After(now) {
			return false
		}
		if left := dl.Sub(now); d < 0 || left < d {
			d = left
		}
	}
	if d < 0 {
		<-ch
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
	return true
}

func (c *pipeConn) Read(p []byte) (int, error) {
	h := c.in
	for {
		h.mu.Lock()
		if h.rclosed {
			h.mu.Unlock()
			return 0, net.ErrClosed
		}
		now := time.Now()
		d := time.Duration(-1)
		if len(h.q) > 0 {
			if !h.q[0].at.After(now) {
				n := copy(p, h.q[0].b)
				h.q[0].b = h.q[0].b[n:]
				if len(h.q[0].b) == 0 {
					h.q[0] = chunk{}
					h.q = h.q[1:]
				}
				h.size -= n
				h.mu.Unlock()
				signal(h.space)
				return n, nil
			}
			d = h.q[0].at.Sub(now)
		} else if h.wclosed {
			h.mu.Unlock()
			return 0, io.EOF
		}
		h.mu.Unlock()
		rdl, _ := c.deadlines()
		if !wait(h.wake, d, rdl) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (c *pipeConn) Write(p []byte) (int, error) {
	h := c.out
	for {
		h.mu.Lock()
		if h.wclosed {
			h.mu.Unlock()
			return 0, net.ErrClosed
		}
		if h.rclosed {
			h.mu.Unlock()
			return 0, io.ErrClosedPipe
		}
		if h.size < pipeBuffer || h.size == 0 {
			d := c.net.delay(c.jitter)
			h.q = append(h.q, chunk{b: append([]byte(nil), p...), at: time.Now().Add(d)})
			h.size += len(p)
			notify := h.notify
			h.mu.Unlock()
			signal(h.wake)
			if notify != nil {
				if d > 0 {
					time.AfterFunc(d, notify)
				} else {
					notify()
				}
			}
			return len(p), nil
		}
		h.mu.Unlock()
		_, wdl := c.deadlines()
		if !wait(h.space, -1, wdl) {
			return 0, os.ErrDeadlineExceeded
		}
	}
}

// Close closes this end: its reads and writes fail, and the other end reads EOF once it
// has read what was written.
func (c *pipeConn) Close() error {
	c.once.Do(func() {
		c.in.mu.Lock()
		c.in.rclosed = true
		c.in.q, c.in.size = nil, 0
		mine := c.in.notify
		c.in.mu.Unlock()
		signal(c.in.wake)
		signal(c.in.space)
		c.out.mu.Lock()
		c.out.wclosed = true
		theirs := c.out.notify
		c.out.mu.Unlock()
		signal(c.out.wake)
		signal(c.out.space)
		if mine != nil {
			mine()
		}
		if theirs != nil {
			theirs()
		}
	})
	return nil
}

// CloseWrite closes this end's writing half: the other end reads EOF once it has read what
// was written, and this end can still read.
func (c *pipeConn) CloseWrite() error {
	h := c.out
	h.mu.Lock()
	if h.wclosed {
		h.mu.Unlock()
		return net.ErrClosed
	}
	h.wclosed = true
	notify := h.notify
	h.mu.Unlock()
	signal(h.wake)
	signal(h.space)
	if notify != nil {
		notify()
	}
	return nil
}

// Notify sets f to be called whenever this end may have become readable (Poller).
func (c *pipeConn) Notify(f func()) {
	c.in.mu.Lock()
	c.in.notify = f
	c.in.mu.Unlock()
}

// Ready reports whether a Read would return without waiting (Poller).
func (c *pipeConn) Ready() bool {
	h := c.in
	rdl, _ := c.deadlines()
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.rclosed:
		return true
	case len(h.q) > 0:
		return !h.q[0].at.After(now)
	case h.wclosed:
		return true
	}
	return !rdl.IsZero() && !rdl.After(now)
}

func (c *pipeConn) LocalAddr() net.Addr  { return c.local }
func (c *pipeConn) RemoteAddr() net.Addr { return c.remote }

func (c *pipeConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.mu.Unlock()
	c.wakeAll()
	return nil
}

func (c *pipeConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	c.wakeAll()
	return nil
}

func (c *pipeConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	c.wakeAll()
	return nil
}

// wakeAll lets a blocked Read or Write look at its new deadline.
func (c *pipeConn) wakeAll() {
	signal(c.in.wake)
	signal(c.out.space)
}
