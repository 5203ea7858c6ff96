// Package swarm runs a local test swarm: full shoal nodes side by side in one process, each on
// its own loopback address (127.0.0.2, 127.0.0.3, ... 127.0.0.254, then 127.0.1.2, ...), that
// find each other through one discovery mode only. It is what `shoal swarm` runs and what the
// tests run.
//
// Start builds a swarm and Close stops everything it started and waits for it. Seed shares a
// file or folder from some nodes, Fetch downloads it on others (killing some midway when asked)
// and reports what it took, Kill closes a node abruptly. Plan.Run does all of that in one call,
// on random content, for `shoal swarm`. New wraps Start for tests, as net/http/httptest does:
// the swarm is closed when the test ends.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/announce"
	"github.com/shoalp2p/shoal/peer/dht"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
	"github.com/shoalp2p/shoal/storage"
	"github.com/shoalp2p/shoal/tracker"
)

// Modes are the ways a swarm's nodes find each other: the mainline DHT, flooding or random
// walks over shoal's unstructured overlay, or an HTTP tracker.
var Modes = []string{"dht", "flood", "walk", "tracker"}

// DefaultWalkers is how many random walkers a node sends per lookup in mode "walk".
const DefaultWalkers = 16

// MaxNodes is the most nodes a swarm holds. The addresses would go on (253 to each /24 of
// 127.0.0.0/8); the machine does not: every node is a torrent client with its own sockets,
// files and goroutines.
const MaxNodes = 1000

// rootAddr holds what every node joins through: the bare DHT node, the bare overlay node or
// the tracker.
const rootAddr = "127.0.0.1"

// Addr is the loopback address of node i: 127.0.0.2 .. 127.0.0.254 for the first 253 nodes,
// then 127.0.1.2 .. 127.0.1.254, and so on.
func Addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 0, byte(i / 253), byte(2 + i%253)})
}

// Config is how Start builds a swarm.
type Config struct {
	// Nodes is how many full nodes to start, 1..MaxNodes.
	Nodes int
	// Mode is how they find each other, one of Modes; empty means "dht".
	Mode string
	// Dir holds every node's state and downloads; empty means a temporary folder, which
	// Close removes.
	Dir string
	// DownloadRate and UploadRate cap each node, in payload bytes per second; 0 is unlimited.
	DownloadRate, UploadRate int64
	// InOrder leaves which pieces each node fetches from whom to the torrent library alone,
	// without shoal's swarm policy (peer.Config.InOrder), for comparison.
	InOrder bool
	// Logger receives every node's log, with its address attached; nil discards it.
	Logger *slog.Logger
}

// Check says what is wrong with c, in one line, or nil.
func (c Config) Check() error {
	if c.Nodes < 1 || c.Nodes > MaxNodes {
		return fmt.Errorf("%d nodes: want 1..%d", c.Nodes, MaxNodes)
	}
	if c.Mode != "" && !slices.Contains(Modes, c.Mode) {
		return fmt.Errorf("mode %q: want one of %s", c.Mode, strings.Join(Modes, ", "))
	}
	if c.DownloadRate < 0 || c.UploadRate < 0 {
		return errors.New("rates must not be negative")
	}
	return nil
}

// Swarm is a set of full shoal nodes in one process, each on its own loopback address, that
// find each other through one discovery mode only. Its methods are safe for concurrent use.
type Swarm struct {
	mode    string
	log     *slog.Logger
	dir     string
	tempDir bool  // dir is Start's own: Close removes it
	owned   bool  // the nodes are the swarm's own: Close and Kill close them
	upRate  int64 // Config.UploadRate
	nodes   []*peer.Node

	root     io.Closer       // the bare DHT or overlay node every node joins through
	tracker  *tracker.Server // in mode "tracker"
	web      *http.Server    // serves tracker
	served   chan struct{}   // closed when web has stopped serving
	announce string          // tracker's announce URL

	wg sync.WaitGroup // the jobs' goroutines

	mu     sync.Mutex // guards the fields below
	closed bool
	jobs   []*job
	dead   map[int]frozen            // killed nodes, with what they had done by then
	seeded map[metainfo.Hash]seeding // what Seed made, by info-hash
}

// frozen is what a killed node had done when it was killed.
type frozen struct {
	search      peer.SearchStats
	transferred map[*job][2]int64 // down, up
}

// Start starts cfg.Nodes nodes, node i on Addr(i), each with its own ports, data folder and
// logger, PEX off, bootstrapped for the mode: a bare DHT node or overlay node on 127.0.0.1
// that every node joins through, or an HTTP tracker on 127.0.0.1 that the torrents Seed makes
// name. ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (s *Swarm, err error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	if cfg.Mode == "" {
		cfg.Mode = "dht"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s = &Swarm{
		mode: cfg.Mode, log: cfg.Logger, dir: cfg.Dir, owned: true, upRate: cfg.UploadRate,
		dead: make(map[int]frozen), seeded: make(map[metainfo.Hash]seeding),
	}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "shoal-swarm-"); err != nil {
			return nil, fmt.Errorf("swarm: %w", err)
		}
		s.tempDir = true
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
			s = nil
		}
	}()
	adapter, err := s.bootstrap()
	if err != nil {
		return nil, fmt.Errorf("swarm: starting the %s bootstrap on %s: %w", s.mode, rootAddr, err)
	}
	for i := range cfg.Nodes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ip := Addr(i).String()
		l := s.log.With("node", ip)
		d, err := adapter(ip, l)
		if err != nil {
			return nil, fmt.Errorf("swarm: node %d (%s): %w", i, ip, err)
		}
		n, err := peer.New(peer.Config{
			Listen: ip + ":0", DataDir: s.nodeDir(i, "state"), DisablePEX: true,
			DownloadRate: cfg.DownloadRate, UploadRate: cfg.UploadRate, InOrder: cfg.InOrder,
			PieceMemory: pieceMemory(cfg.Nodes),
			Discovery:   []peer.Discovery{d}, Logger: l,
		})
		if err != nil {
			return nil, fmt.Errorf("swarm: node %d (%s): %w", i, ip, err)
		}
		s.nodes = append(s.nodes, n)
	}
	return s, nil
}

// bootstrap starts what the mode's nodes join through, and returns how to make one node's
// discovery adapter.
func (s *Swarm) bootstrap() (func(ip string, l *slog.Logger) (peer.Discovery, error), error) {
	rl := s.log.With("node", rootAddr)
	switch s.mode {
	case "dht":
		root, err := dht.New(dht.Config{Listen: rootAddr + ":0", Bootstrap: []string{}, StateDir: filepath.Join(s.dir, rootAddr, "dht"), Logger: rl})
		if err != nil {
			return nil, err
		}
		s.root = root
		boot := []string{root.Addr().String()}
		return func(ip string, l *slog.Logger) (peer.Discovery, error) {
			return dht.New(dht.Config{Listen: ip + ":0", Bootstrap: boot, StateDir: filepath.Join(s.dir, ip, "dht"), Logger: l})
		}, nil
	case "flood", "walk":
		walkers := 0
		if s.mode == "walk" {
			walkers = DefaultWalkers
		}
		root, err := floodNode(rootAddr, flood.Config{Logger: rl})
		if err != nil {
			return nil, err
		}
		s.root = root
		boot := []netip.AddrPort{root.Addr()}
		return func(ip string, l *slog.Logger) (peer.Discovery, error) {
			return floodNode(ip, flood.Config{Bootstrap: boot, Walkers: walkers, Logger: l})
		}, nil
	case "tracker":
		srv, err := tracker.New(tracker.Config{Interval: time.Minute, Logger: rl})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp4", rootAddr+":0")
		if err != nil {
			return nil, err
		}
		s.tracker = srv
		s.web = srv.HTTPServer(slog.NewLogLogger(rl.Handler(), slog.LevelDebug))
		s.served = make(chan struct{})
		go func() {
			defer close(s.served)
			_ = s.web.Serve(srv.Listener(ln)) // ends when Close closes s.web
		}()
		s.announce = "http://" + ln.Addr().String() + "/announce"
		return func(ip string, l *slog.Logger) (peer.Discovery, error) {
			return announce.New(announce.Config{LocalIP: netip.MustParseAddr(ip), Logger: l}), nil
		}, nil
	}
	return nil, fmt.Errorf("mode %q: want one of %s", s.mode, strings.Join(Modes, ", "))
}

// floodNode starts an overlay node on ip, any free port.
func floodNode(ip string, cfg flood.Config) (*flood.Node, error) {
	tr, err := transport.ListenTCP(ip + ":0")
	if err != nil {
		return nil, err
	}
	cfg.Transport = tr
	n, err := flood.New(cfg)
	if err != nil {
		tr.Close()
	}
	return n, err
}

// nodeDir is a folder of node i's own, named after its address.
func (s *Swarm) nodeDir(i int, name string) string {
	ip := Addr(i)
	if i < len(s.nodes) {
		ip = s.nodes[i].Addr().Addr()
	}
	return filepath.Join(s.dir, ip.String(), name)
}

// Nodes are the swarm's nodes; node i is on Addr(i). A killed node stays in the list, closed.
func (s *Swarm) Nodes() []*peer.Node { return s.nodes }

// Mode is how the nodes find each other.
func (s *Swarm) Mode() string { return s.mode }

// Dir is the folder that holds the nodes' state and downloads.
func (s *Swarm) Dir() string { return s.dir }

// Alive says node i is running: it was not killed, and the swarm is not closed.
func (s *Swarm) Alive(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, dead := s.dead[i]
	return !s.closed && !dead && i >= 0 && i < len(s.nodes)
}

// Kill closes node i abruptly, as a crash would: its connections drop mid-transfer, it says
// goodbye to no one (a tracker keeps listing it), and its torrents stop. It returns once they
// have stopped. Killing a node twice does nothing more.
func (s *Swarm) Kill(i int) error {
	if i < 0 || i >= len(s.nodes) {
		return fmt.Errorf("swarm: no node %d (the swarm has %d)", i, len(s.nodes))
	}
	jobs, err := s.kill(i)
	for _, j := range jobs {
		<-j.done
	}
	return err
}

// kill closes node i and cancels its jobs without waiting for them to end: the caller may be
// the one reading their events.
func (s *Swarm) kill(i int) ([]*job, error) {
	s.mu.Lock()
	if _, dead := s.dead[i]; dead || s.closed {
		s.mu.Unlock()
		return nil, nil
	}
	var jobs []*job
	f := frozen{search: total(s.nodes[i].SearchStats()), transferred: make(map[*job][2]int64)}
	for _, j := range s.jobs {
		if j.node == i {
			jobs = append(jobs, j)
			down, up := j.t.Transferred()
			f.transferred[j] = [2]int64{down, up}
		}
	}
	s.dead[i] = f
	s.mu.Unlock()
	var err error
	if s.owned {
		err = s.nodes[i].Close()
	}
	for _, j := range jobs {
		j.cancel()
	}
	if err != nil {
		return jobs, fmt.Errorf("swarm: killing node %d: %w", i, err)
	}
	return jobs, nil
}

// searchStats is what node i's discovery has cost: until now, or until it was killed.
func (s *Swarm) searchStats(i int) peer.SearchStats {
	s.mu.Lock()
	f, dead := s.dead[i]
	s.mu.Unlock()
	if dead {
		return f.search
	}
	return total(s.nodes[i].SearchStats())
}

// transferred is what j has moved, until now or until its node was killed.
func (s *Swarm) transferred(j *job) (down, up int64) {
	s.mu.Lock()
	f, dead := s.dead[j.node]
	s.mu.Unlock()
	if dead {
		if t, ok := f.transferred[j]; ok {
			return t[0], t[1]
		}
	}
	return j.t.Transferred()
}

// total adds up the stats of every adapter of a node.
func total(m map[string]peer.SearchStats) peer.SearchStats {
	var t peer.SearchStats
	for _, st := range m {
		t.Add(st)
	}
	return t
}

// Close stops every torrent the swarm runs and waits for them, closes every node (those of
// an adopted swarm excepted) and the bootstrap node or tracker, and removes the temporary
// folder, if Start made one. Closing twice does nothing more.
func (s *Swarm) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	jobs := s.jobs
	dead := s.dead
	s.mu.Unlock()
	for _, j := range jobs {
		j.cancel()
	}
	s.wg.Wait()
	var errs []error
	if s.owned {
		for i, n := range s.nodes {
			if _, ok := dead[i]; ok {
				continue
			}
			if err := n.Close(); err != nil {
				errs = append(errs, fmt.Errorf("closing node %d: %w", i, err))
			}
		}
	}
	if s.root != nil {
		if err := s.root.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the bootstrap node: %w", err))
		}
	}
	if s.web != nil {
		_ = s.web.Close()
		<-s.served
	}
	if s.tempDir {
		if err := os.RemoveAll(s.dir); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("swarm: %w", errors.Join(errs...))
	}
	return nil
}

// pieceMemory is each node's memory for piece buffers and for its piece cache: the storage's
// defaults (32 MiB each) for a few nodes, down to 4 MiB each so that the whole swarm stays
// near 2 GiB (1 GiB each) however many nodes share the process.
func pieceMemory(nodes int) int64 {
	return min(max((1<<30)/int64(max(nodes, 1)), 4<<20), storage.DefaultBufferLimit)
}
