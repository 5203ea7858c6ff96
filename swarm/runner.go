package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/announce"
	"github.com/shoalp2p/shoal/peer/dht"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/tracker"
)

// Modes are the ways a swarm's nodes find each other.
var Modes = []string{"dht", "flood", "walk", "tracker"}

// DefaultWalkers is how many random walkers a node sends per lookup in mode "walk".
const DefaultWalkers = 16

// Option changes how New builds a swarm.
type Option func(*options)

type options struct {
	mode    string
	base    int
	logger  func(tb testing.TB) *slog.Logger
	timeout time.Duration
}

// WithMode chooses how the nodes find each other: "dht" (default), "flood", "walk" or
// "tracker".
func WithMode(mode string) Option { return func(o *options) { o.mode = mode } }

// WithBase puts node i on 127.0.0.(base+i); default 2 (127.0.0.1 holds the bootstrap node or
// the tracker).
func WithBase(base int) Option { return func(o *options) { o.base = base } }

// WithLogger gives every node l, with its address attached; the default discards the log.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = func(testing.TB) *slog.Logger { return l } }
}

// WithTestLog logs at level and above through tb.Log, so a failing test shows what the
// nodes said.
func WithTestLog(level slog.Level) Option {
	return func(o *options) {
		o.logger = func(tb testing.TB) *slog.Logger {
			return TestLogger(tb, level)
		}
	}
}

// WithTimeout bounds how long Fetch waits for every download; default 2 minutes.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// Swarm is n full shoal nodes in one process, each on its own loopback address, that find
// each other through one discovery mode only. Everything it starts is stopped and waited
// for when the test ends.
type Swarm struct {
	tb       testing.TB
	opts     options
	nodes    []*peer.Node
	announce string            // the tracker's announce URL, in mode "tracker"
	tracker  *tracker.Server   // in mode "tracker"
	seeded   map[string]string // info-hash -> the path Seed was given
}

// New starts n nodes on 127.0.0.base .. 127.0.0.(base+n-1), each with its own ports, data
// directory and logger, bootstrapped for the mode: a bare DHT node or flood overlay node on
// 127.0.0.1 that every node joins through, or an HTTP tracker on 127.0.0.1 that torrents
// seeded with Seed name.
func New(tb testing.TB, n int, opts ...Option) *Swarm {
	tb.Helper()
	o := options{mode: "dht", base: 2, timeout: 2 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	if o.base < 2 || n < 1 || o.base+n-1 > 254 {
		tb.Fatalf("swarm: %d nodes from 127.0.0.%d do not fit in 127.0.0.2..254", n, o.base)
	}
	logger := func(ip string) *slog.Logger {
		if o.logger == nil {
			return slog.New(slog.NewTextHandler(io.Discard, nil))
		}
		return o.logger(tb).With("node", ip)
	}
	s := &Swarm{tb: tb, opts: o, seeded: make(map[string]string)}
	var adapter func(ip string, l *slog.Logger) (peer.Discovery, error)
	switch o.mode {
	case "dht":
		root, err := dht.New(dht.Config{Listen: "127.0.0.1:0", Bootstrap: []string{}, StateDir: tb.TempDir(), Logger: logger("127.0.0.1")})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = root.Close() })
		boot := root.Addr().String()
		adapter = func(ip string, l *slog.Logger) (peer.Discovery, error) {
			return dht.New(dht.Config{Listen: ip + ":0", Bootstrap: []string{boot}, StateDir: tb.TempDir(), Logger: l})
		}
	case "flood", "walk":
		walkers := 0
		if o.mode == "walk" {
			walkers = DefaultWalkers
		}
		root, err := floodNode("127.0.0.1", flood.Config{Logger: logger("127.0.0.1")})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = root.Close() })
		boot := []netip.AddrPort{root.Addr()}
		adapter = func(ip string, l *slog.Logger) (peer.Discovery, error) {
			return floodNode(ip, flood.Config{Bootstrap: boot, Walkers: walkers, Logger: l})
		}
	case "tracker":
		srv, err := tracker.New(tracker.Config{Interval: time.Minute, Logger: logger("127.0.0.1")})
		if err != nil {
			tb.Fatal(err)
		}
		hs := httptest.NewServer(srv) // 127.0.0.1:0
		tb.Cleanup(hs.Close)
		s.tracker, s.announce = srv, hs.URL+"/announce"
		adapter = func(ip string, l *slog.Logger) (peer.Discovery, error) {
			return announce.New(announce.Config{LocalIP: netip.MustParseAddr(ip), Logger: l}), nil
		}
	default:
		tb.Fatalf("swarm: mode %q: want one of %s", o.mode, strings.Join(Modes, ", "))
	}
	for i := range n {
		ip := fmt.Sprintf("127.0.0.%d", o.base+i)
		l := logger(ip)
		d, err := adapter(ip, l)
		if err != nil {
			tb.Fatalf("swarm: node %s: %v", ip, err)
		}
		s.nodes = append(s.nodes, Node(tb, peer.Config{Listen: ip + ":0", Discovery: []peer.Discovery{d}, Logger: l}))
	}
	return s
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

// Nodes are the swarm's nodes; node i is on 127.0.0.(base+i).
func (s *Swarm) Nodes() []*peer.Node { return s.nodes }

// Mode is how the nodes find each other.
func (s *Swarm) Mode() string { return s.opts.mode }

// Seed makes a torrent of the file or folder at path (naming the swarm's tracker in mode
// "tracker") and seeds it from node 0 until the test ends. In mode "tracker" it returns once
// the tracker lists the seeder.
func (s *Swarm) Seed(path string) *meta.Source {
	s.tb.Helper()
	var co meta.CreateOptions
	if s.announce != "" {
		co.Announce = []string{s.announce}
	}
	src := seed(s.tb, s.nodes[0], path, co)
	s.seeded[src.InfoHash.HexString()] = path
	if s.tracker != nil {
		s.waitListed(src.InfoHash.HexString())
	}
	return src
}

// waitListed waits until the tracker lists a seeder of ih.
func (s *Swarm) waitListed(ih string) {
	s.tb.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(s.opts.timeout)
	for {
		for _, t := range s.tracker.Stats().PerTorrent {
			if t.InfoHash == ih && t.Seeders > 0 {
				return
			}
		}
		select {
		case <-tick.C:
		case <-deadline:
			s.tb.Fatalf("swarm: the tracker did not list the seeder of %s within %v", ih, s.opts.timeout)
		}
	}
}

// Download is one node's finished download.
type Download struct {
	Node    int     // index in Nodes
	Dir     string  // the folder the content went in
	Seconds float64 // from the start of its run to complete
}

// Fetch downloads src, which Seed returned, on every node but node 0 at once, with no peer
// address given: each finds peers through the swarm's mode alone. It returns when all are
// complete, each file's sha256 checked against the seeded original, and fails the test when
// a download fails or they are not all done within the swarm's timeout. The downloads keep
// seeding until the test ends.
func (s *Swarm) Fetch(src *meta.Source) []Download {
	s.tb.Helper()
	path, ok := s.seeded[src.InfoHash.HexString()]
	if !ok {
		s.tb.Fatalf("swarm: Fetch of %s, which Seed did not return", src.InfoHash.HexString())
	}
	return fetch(s.tb, s.nodes, func(int) *meta.Source { return src }, path, s.opts.timeout)
}

// seed makes a torrent of the file or folder at path and seeds it from n until tb ends.
func seed(tb testing.TB, n *peer.Node, path string, co meta.CreateOptions) *meta.Source {
	tb.Helper()
	src, err := meta.Create(path, co)
	if err != nil {
		tb.Fatal(err)
	}
	tt, err := n.Add(src, peer.AddOptions{Dir: filepath.Dir(path), Name: filepath.Base(path), Seed: true})
	if err != nil {
		tb.Fatal(err)
	}
	Run(tb, tt, peer.RunOptions{SeedTime: -1})
	return src
}

// Share seeds the file or folder at path from nodes[0] and fetches it on every other node
// at once, with no peer address given; the even-numbered nodes start from the bare magnet
// link, so even the metadata comes from peers their discovery found. It fails tb unless
// every copy's sha256 matches within timeout, and returns the torrent and the downloads.
func Share(tb testing.TB, nodes []*peer.Node, path string, timeout time.Duration) (*meta.Source, []Download) {
	tb.Helper()
	src := seed(tb, nodes[0], path, meta.CreateOptions{})
	magnet, err := meta.ParseMagnet(meta.Magnet(src))
	if err != nil {
		tb.Fatal(err)
	}
	pick := func(i int) *meta.Source {
		if i%2 == 0 {
			return magnet
		}
		return src
	}
	return src, fetch(tb, nodes, pick, path, timeout)
}

// fetch downloads srcFor(i) on every nodes[i] but the first at once, and checks every copy
// against the original at path: see Fetch.
func fetch(tb testing.TB, nodes []*peer.Node, srcFor func(int) *meta.Source, path string, timeout time.Duration) []Download {
	tb.Helper()
	type result struct {
		i   int
		c   peer.Complete
		err error
	}
	results := make(chan result, len(nodes))
	dirs := make([]string, len(nodes))
	for i := 1; i < len(nodes); i++ {
		dirs[i] = tb.TempDir()
		tt, err := nodes[i].Add(srcFor(i), peer.AddOptions{Dir: dirs[i]})
		if err != nil {
			tb.Fatal(err)
		}
		run(tb, tt, peer.RunOptions{SeedTime: -1}, func(c peer.Complete, err error) {
			results <- result{i, c, err}
		})
	}
	deadline := time.After(timeout)
	done := make([]bool, len(nodes))
	var out []Download
	for range len(nodes) - 1 {
		select {
		case r := <-results:
			if r.err != nil {
				tb.Fatalf("swarm: node %d (%s) failed: %v", r.i, nodes[r.i].Addr().Addr(), r.err)
			}
			done[r.i] = true
			out = append(out, Download{Node: r.i, Dir: dirs[r.i], Seconds: r.c.Seconds})
		case <-deadline:
			var missing []string
			for i := 1; i < len(nodes); i++ {
				if !done[i] {
					missing = append(missing, nodes[i].Addr().Addr().String())
				}
			}
			tb.Fatalf("swarm: %d of %d downloads not complete after %v: %s", len(missing), len(nodes)-1, timeout, strings.Join(missing, " "))
		}
	}
	want := sums(tb, path)
	for _, d := range out {
		got := sums(tb, filepath.Join(d.Dir, filepath.Base(path)))
		if len(got) != len(want) {
			tb.Fatalf("swarm: node %d holds %d files, want %d", d.Node, len(got), len(want))
		}
		for name, sum := range want {
			if got[name] != sum {
				tb.Fatalf("swarm: node %d: %s has sha256 %x, want %x", d.Node, name, got[name], sum)
			}
		}
	}
	return out
}

// sums is the sha256 of the file at path, or of every file under the folder at path, by
// path relative to it.
func sums(tb testing.TB, path string) map[string][32]byte {
	tb.Helper()
	m := make(map[string][32]byte)
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		m[rel] = FileSum(tb, p)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// run runs tt in a goroutine that is stopped and waited for when tb ends; done is called
// once, with its Complete event or with the error Run ended with before one.
func run(tb testing.TB, tt *peer.Torrent, opts peer.RunOptions, done func(peer.Complete, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() {
		var completed atomic.Bool
		err := tt.Run(ctx, opts, func(e peer.Event) {
			if c, ok := e.(peer.Complete); ok && completed.CompareAndSwap(false, true) {
				done(c, nil)
			}
		})
		if completed.CompareAndSwap(false, true) {
			if err == nil {
				err = errors.New("run ended before complete")
			}
			done(peer.Complete{}, err)
		}
		ended <- err
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-ended; err != nil && !errors.Is(err, peer.ErrInterrupted) {
			tb.Error(err)
		}
	})
}
