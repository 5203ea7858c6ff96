package tracker

import (
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of the tracker's HTTP server (HTTPServer and Listener): a client that opens
// connections and never finishes a request (slowloris), or sends a huge one, costs a bounded
// number of file descriptors for a bounded time.
const (
	// DefaultHeaderTimeout is how long a client has to send its request line and headers
	// (Config.HeaderTimeout); the connection is closed after it, however slowly the bytes
	// trickle in.
	DefaultHeaderTimeout = 10 * time.Second
	// ReadTimeout and WriteTimeout bound reading a whole request and writing its answer;
	// IdleTimeout is how long a kept-alive connection waits for its next request.
	ReadTimeout  = 15 * time.Second
	WriteTimeout = 15 * time.Second
	IdleTimeout  = time.Minute
	// MaxHeaderBytes bounds a request line and headers: a longer request is answered
	// "431 Request Header Fields Too Large" by net/http, before the tracker sees it.
	MaxHeaderBytes = 32 << 10
	// MaxQueryBytes is the longest query string an announce or scrape may have (a scrape of
	// MaxScrapeHashes info-hashes is about 6.3 KiB); a longer one gets a failure reason.
	MaxQueryBytes = 8 << 10
	// DefaultMaxConns is how many connections may be open at once (Config.MaxConns); those
	// past it are closed as soon as they are accepted.
	DefaultMaxConns = 8192
)

// HTTPServer returns an http.Server that serves s with the timeouts and limits above;
// errorLog (nil: the log package's) receives net/http's own errors. Serve it on
// s.Listener(l), which bounds the connections open at once.
func (s *Server) HTTPServer(errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.HeaderTimeout,
		ReadTimeout:       max(ReadTimeout, s.cfg.HeaderTimeout),
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          errorLog,
	}
}

// Listener wraps l so that at most Config.MaxConns accepted connections are open at once:
// one accepted past that is closed at once, and counted (Stats.ConnsRefused).
func (s *Server) Listener(l net.Listener) net.Listener {
	return &limitListener{Listener: l, s: s}
}

type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.s.conns.Add(1) > int64(l.s.cfg.MaxConns) {
			l.s.conns.Add(-1)
			l.s.connsRefused.Add(1)
			c.Close()
			continue
		}
		return &limitConn{Conn: c, open: &l.s.conns}, nil
	}
}

// limitConn gives its place back when closed.
type limitConn struct {
	net.Conn
	open *atomic.Int64
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.open.Add(-1) })
	return err
}
