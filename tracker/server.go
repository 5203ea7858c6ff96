package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Defaults and fixed limits.
const (
	DefaultInterval    = 30 * time.Minute
	DefaultMaxTorrents = 1000
	DefaultMaxPeers    = 2000

	// DefaultNumWant is how many peers an announce without numwant gets; MaxNumWant is the
	// most any announce gets.
	DefaultNumWant = 50
	MaxNumWant     = 200
	// MaxScrapeHashes is the most info-hashes one scrape may name; MaxScrapeAll the most
	// torrents a scrape without info_hash lists.
	MaxScrapeHashes = 100
	MaxScrapeAll    = 1000
)

// Config is how a Server runs. The zero value is a usable open tracker.
type Config struct {
	// Interval is how often clients should announce (default 30 minutes, at least a
	// second). A peer silent for two intervals is dropped.
	Interval time.Duration
	// MinInterval is the "min interval" clients are told; default Interval/2.
	MinInterval time.Duration
	// MaxTorrents bounds the torrents tracked and MaxPeers the peers of one torrent;
	// 0 means the default.
	MaxTorrents, MaxPeers int
	// Allow, when not empty, is the only info-hashes served (a private tracker).
	Allow []metainfo.Hash
	// Logger receives a line for each refused request at debug level; nil discards.
	Logger *slog.Logger
	// HeaderTimeout is how long HTTPServer gives a client to send its request's headers
	// (default DefaultHeaderTimeout); MaxConns how many connections Listener lets be open at
	// once (default DefaultMaxConns).
	HeaderTimeout time.Duration
	MaxConns      int
}

// Failure reasons shared by announce and scrape.
const (
	reasonNotAllowed = "torrent not allowed on this tracker"
	reasonBadQuery   = "malformed query string"
	reasonLongQuery  = "query string too long"
	reasonNotGet     = "not a GET request"
)

// Server is an HTTP tracker. Create it with New; serve it with any http.Server.
type Server struct {
	cfg     Config
	ttl     time.Duration // a peer is dropped after this long without an announce
	allow   map[metainfo.Hash]bool
	log     *slog.Logger
	mux     *http.ServeMux
	started time.Time

	mu       sync.Mutex // guards torrents and everything reachable from it
	torrents map[metainfo.Hash]*swarm

	announces, scrapes, failures atomic.Int64
	conns, connsRefused          atomic.Int64 // connections open through Listener, and refused by it
}

// New checks cfg, fills in its defaults and makes a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Interval < time.Second {
		return nil, fmt.Errorf("tracker interval %v: must be at least 1s", cfg.Interval)
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = cfg.Interval / 2
	}
	if cfg.MinInterval < 0 || cfg.MinInterval > cfg.Interval {
		return nil, fmt.Errorf("tracker min interval %v: must be between 0 and the interval %v", cfg.MinInterval, cfg.Interval)
	}
	if cfg.MaxTorrents < 0 || cfg.MaxPeers < 0 || cfg.MaxConns < 0 || cfg.HeaderTimeout < 0 {
		return nil, errors.New("tracker bounds must not be negative")
	}
	if cfg.MaxTorrents == 0 {
		cfg.MaxTorrents = DefaultMaxTorrents
	}
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = DefaultHeaderTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		ttl:      2 * cfg.Interval,
		log:      cfg.Logger,
		started:  time.Now(),
		torrents: make(map[metainfo.Hash]*swarm),
	}
	if len(cfg.Allow) > 0 {
		s.allow = make(map[metainfo.Hash]bool, len(cfg.Allow))
		for _, h := range cfg.Allow {
			s.allow[h] = true
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/announce", s.serveAnnounce)
	s.mux.HandleFunc("/scrape", s.serveScrape)
	s.mux.HandleFunc("GET /stats", s.serveStats)
	s.mux.HandleFunc("GET /{$}", s.serveStatus)
	return s, nil
}

// ServeHTTP serves /announce, /scrape, /stats and /.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// query checks a request to /announce or /scrape and parses its query string; it returns a
// failure reason if the request is not a GET or its query is too long or malformed.
func query(r *http.Request) (url.Values, string) {
	if r.Method != http.MethodGet {
		return nil, reasonNotGet
	}
	if len(r.URL.RawQuery) > MaxQueryBytes {
		return nil, reasonLongQuery + ": at most " + strconv.Itoa(MaxQueryBytes) + " bytes"
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, reasonBadQuery
	}
	return q, ""
}

// allowed says whether ih may be announced and scraped here.
func (s *Server) allowed(ih metainfo.Hash) bool { return s.allow == nil || s.allow[ih] }

// Run drops expired peers, and torrents left without peers, until ctx ends. Expired peers
// are never handed out whether Run runs or not; Run frees the memory of torrents nobody
// asks about any more.
func (s *Server) Run(ctx context.Context) error {
	every := min(max(s.cfg.Interval/2, time.Second), time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			s.mu.Lock()
			s.sweepLocked(now, false)
			s.mu.Unlock()
		}
	}
}

// sweepLocked drops expired peers from every torrent, and torrents without peers that have
// been idle for the peer lifetime, or at once with evictEmpty. s.mu must be held.
func (s *Server) sweepLocked(now time.Time, evictEmpty bool) {
	for ih, t := range s.torrents {
		t.expire(now)
		if len(t.list) == 0 && (evictEmpty || now.Sub(t.lastSeen) >= s.ttl) {
			delete(s.torrents, ih)
		}
	}
}
