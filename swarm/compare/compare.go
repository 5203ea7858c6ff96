// Package compare measures the cost of search in a swarm: Kademlia DHT lookups against
// flooding and random walks over the unstructured overlay, on the same number of nodes, with
// the content on the same share of them. It runs the real protocol code, either on loopback
// sockets (each node on its own address 127.0.x.y) or over in-memory networks with a latency
// model (Sim), and puts the textbook expectation next to every measured row.
//
// Only the discovery layer runs here: DHT servers and overlay nodes, no torrent clients.
package compare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Modes are the search methods compare knows.
var Modes = []string{"dht", "flood", "walk"}

// Config is one experiment: every mode at every size.
type Config struct {
	Nodes []int    // network sizes
	Modes []string // of Modes
	// TTLs are the query TTLs tried in modes flood (hops) and walk (steps per walker);
	// each is a row of its own. The DHT has no TTL.
	TTLs []int
	// Degree is the overlay's D: each node keeps D..2D neighbours.
	Degree int
	// Walkers is how many random walkers a lookup sends in mode walk.
	Walkers int
	// Replication is the share of nodes that hold the content (at least one node does).
	Replication float64
	// Lookups is how many lookups each row runs, each from a random node that does not hold
	// the content.
	Lookups int
	// Sim runs the nodes over in-memory networks instead of loopback sockets, with each
	// message delayed Latency plus up to Jitter (uniform).
	Sim             bool
	Latency, Jitter time.Duration
	// Seed makes the run reproducible: node IDs, topology, placement and lookup origins.
	Seed uint64
	// Logger receives progress and the nodes' warnings; nil discards them.
	Logger *slog.Logger
	// Progress, when set, is told as each network is built and each lookup is done; it is
	// called from one goroutine at a time, and a build's Done only goes up.
	Progress func(Progress)
}

// Progress is where a run is.
type Progress struct {
	Mode  string `json:"mode"`
	Nodes int    `json:"nodes"`
	TTL   int    `json:"ttl,omitempty"`
	Phase string `json:"phase"` // "build" (Done of Total nodes started) or "lookup" (Done of Total lookups)
	Done  int    `json:"done"`
	Total int    `json:"total"`
}

// Row is one measured cell: a mode at one size (and TTL), over Lookups lookups, beside
// what theory expects of it. Messages count every datagram (DHT query or reply) or frame
// (overlay query copy or hit) the lookup caused, anywhere in the network; bytes count their
// payload.
type Row struct {
	Mode        string  `json:"mode"`
	Nodes       int     `json:"nodes"`
	TTL         int     `json:"ttl"` // 0 for the DHT
	Sim         bool    `json:"sim"`
	Degree      int     `json:"degree"`
	MeanDegree  float64 `json:"mean_degree,omitempty"` // measured: the overlay keeps D..2D links; the flood's expectation is taken at it
	Replication float64 `json:"replication"`
	Holders     int     `json:"holders"`

	Lookups              int     `json:"lookups"`
	SuccessRate          float64 `json:"success_rate"`
	MessagesPerLookup    float64 `json:"messages_per_lookup"` // mean
	MessagesPerLookupP95 float64 `json:"messages_per_lookup_p95"`
	NodesReached         float64 `json:"nodes_reached"`     // mean distinct nodes a lookup reached
	HopsToFirstHit       float64 `json:"hops_to_first_hit"` // mean, over lookups that found it
	LatencyMsP50         float64 `json:"latency_ms_p50"`    // to the first hit, over lookups that found it
	LatencyMsP95         float64 `json:"latency_ms_p95"`
	BytesPerLookup       float64 `json:"bytes_per_lookup"` // mean

	// What theory expects: see Expect.
	ExpectedMessages float64 `json:"expected_messages"`
	ExpectedHops     float64 `json:"expected_hops"`
	ExpectedSuccess  float64 `json:"expected_success"`
}

// Result is one lookup.
type Result struct {
	Found        bool
	Messages     int64         // datagrams or frames the lookup caused, network-wide
	Bytes        int64         // their bytes
	NodesReached int           // distinct nodes that received the lookup's query
	Hops         int           // hops from the origin to the node that answered first
	Latency      time.Duration // from the start to the first hit
}

// network is one built network of n nodes running one mode. Lookups run one at a time:
// Lookup returns only once every message the lookup caused has been delivered or dropped,
// so that its counts are its own.
type network interface {
	// Place makes the nodes holders hold ih (a DHT announce; an overlay node answers for it).
	Place(ctx context.Context, ih metainfo.Hash, holders []int) error
	// Lookup searches for ih from node from; ttl is the flood TTL or walk step budget, 0 in
	// the DHT.
	Lookup(ctx context.Context, from int, ih metainfo.Hash, ttl int) (Result, error)
	// Close stops every node and waits for them.
	Close() error
}

// meanDegree is a network whose nodes keep more links than Config.Degree (the overlay keeps
// D..2D): the expectations are taken at its mean degree.
type meanDegree interface{ MeanDegree() float64 }

// builders start a network of a mode: b.n nodes, real or simulated.
var builders = map[string]func(ctx context.Context, b build) (network, error){}

// build is what a builder gets.
type build struct {
	cfg  Config
	mode string
	n    int
	rng  *rand.Rand
	log  *slog.Logger
	// progress reports nodes started so far; a builder calls it from one goroutine at a
	// time, with a count that only goes up.
	progress func(done int)
}

// Defaults for the zero values of Config.
const (
	DefaultDegree      = 4
	DefaultWalkers     = 16
	DefaultReplication = 0.01
	DefaultLookups     = 200
)

// Run builds a network for every size and mode and measures it; each row goes to emit as
// soon as it is measured, and all of them are returned.
func Run(ctx context.Context, cfg Config, emit func(Row)) ([]Row, error) {
	if cfg.Degree == 0 {
		cfg.Degree = DefaultDegree
	}
	if cfg.Walkers == 0 {
		cfg.Walkers = DefaultWalkers
	}
	if cfg.Replication == 0 {
		cfg.Replication = DefaultReplication
	}
	if cfg.Lookups == 0 {
		cfg.Lookups = DefaultLookups
	}
	if len(cfg.TTLs) == 0 {
		cfg.TTLs = []int{7}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := check(cfg); err != nil {
		return nil, err
	}
	var rows []Row
	for _, n := range cfg.Nodes {
		for _, mode := range cfg.Modes {
			got, err := runCell(ctx, cfg, mode, n, emit)
			rows = append(rows, got...)
			if err != nil {
				return rows, err
			}
		}
	}
	return rows, nil
}

// check refuses a configuration that cannot run.
func check(cfg Config) error {
	if len(cfg.Nodes) == 0 {
		return errors.New("compare: no network size")
	}
	for _, n := range cfg.Nodes {
		if n < 2 {
			return fmt.Errorf("compare: %d nodes: need at least 2", n)
		}
	}
	if len(cfg.Modes) == 0 {
		return errors.New("compare: no mode")
	}
	for _, m := range cfg.Modes {
		if _, ok := builders[m]; !ok {
			return fmt.Errorf("compare: unknown mode %q (want %v)", m, Modes)
		}
	}
	for _, t := range cfg.TTLs {
		if t < 1 || t > 7 {
			return fmt.Errorf("compare: ttl %d: want 1..7", t)
		}
	}
	if cfg.Degree < 3 {
		return fmt.Errorf("compare: degree %d: want 3 or more", cfg.Degree)
	}
	if cfg.Replication < 0 || cfg.Replication > 1 {
		return fmt.Errorf("compare: replication %v: want a share between 0 and 1", cfg.Replication)
	}
	if cfg.Lookups < 1 {
		return fmt.Errorf("compare: %d lookups: want at least 1", cfg.Lookups)
	}
	if cfg.Latency < 0 || cfg.Jitter < 0 {
		return errors.New("compare: latency and jitter cannot be negative")
	}
	return nil
}

// runCell builds one network and measures it at every TTL its mode has.
func runCell(ctx context.Context, cfg Config, mode string, n int, emit func(Row)) ([]Row, error) {
	// One random stream per cell, so that a cell's result does not depend on which others ran.
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(n)<<8|uint64(slices.Index(Modes, mode))))
	log := cfg.Logger.With("mode", mode, "nodes", n)
	progress := func(p Progress) {
		if cfg.Progress != nil {
			cfg.Progress(p)
		}
	}
	began := time.Now()
	net, err := builders[mode](ctx, build{cfg: cfg, mode: mode, n: n, rng: rng, log: log,
		progress: func(done int) { progress(Progress{Mode: mode, Nodes: n, Phase: "build", Done: done, Total: n}) }})
	if err != nil {
		return nil, fmt.Errorf("compare: %s, %d nodes: %w", mode, n, err)
	}
	defer net.Close()
	log.Info("network built", "took", time.Since(began).Round(time.Millisecond))

	holders := max(1, int(math.Round(cfg.Replication*float64(n))))
	holders = min(holders, n-1) // someone must be left to search
	perm := rng.Perm(n)
	var ih metainfo.Hash
	for i := range ih {
		ih[i] = byte(rng.Uint32())
	}
	if err := net.Place(ctx, ih, perm[:holders]); err != nil {
		return nil, fmt.Errorf("compare: %s, %d nodes: placing the content: %w", mode, n, err)
	}
	searchers := perm[holders:]

	ttls := cfg.TTLs
	if mode == "dht" {
		ttls = []int{0}
	}
	var rows []Row
	for _, ttl := range ttls {
		results := make([]Result, 0, cfg.Lookups)
		for i := range cfg.Lookups {
			from := searchers[rng.IntN(len(searchers))]
			r, err := net.Lookup(ctx, from, ih, ttl)
			if err != nil {
				return rows, fmt.Errorf("compare: %s, %d nodes: lookup from node %d: %w", mode, n, from, err)
			}
			results = append(results, r)
			progress(Progress{Mode: mode, Nodes: n, TTL: ttl, Phase: "lookup", Done: i + 1, Total: cfg.Lookups})
		}
		row := summarize(results)
		row.Mode, row.Nodes, row.TTL, row.Sim = mode, n, ttl, cfg.Sim
		row.Degree, row.Replication, row.Holders = cfg.Degree, cfg.Replication, holders
		if mode == "dht" {
			row.Degree = 0
		}
		degree := float64(cfg.Degree)
		if m, ok := net.(meanDegree); ok {
			degree = m.MeanDegree()
			row.MeanDegree = degree
		}
		e := expect(mode, n, ttl, degree, cfg.Walkers, holders)
		row.ExpectedMessages, row.ExpectedHops, row.ExpectedSuccess = e.Messages, e.Hops, e.Success
		rows = append(rows, row)
		if emit != nil {
			emit(row)
		}
	}
	return rows, nil
}

// summarize turns a row's lookups into its measured columns.
func summarize(rs []Result) Row {
	var row Row
	row.Lookups = len(rs)
	var msgs, lat []float64
	var found, hops, bytes, reached float64
	for _, r := range rs {
		msgs = append(msgs, float64(r.Messages))
		bytes += float64(r.Bytes)
		reached += float64(r.NodesReached)
		if r.Found {
			found++
			hops += float64(r.Hops)
			lat = append(lat, float64(r.Latency)/float64(time.Millisecond))
		}
	}
	n := float64(len(rs))
	row.SuccessRate = found / n
	row.MessagesPerLookup = mean(msgs)
	row.MessagesPerLookupP95 = Quantile(msgs, 0.95)
	row.NodesReached = reached / n
	row.BytesPerLookup = bytes / n
	if found > 0 {
		row.HopsToFirstHit = hops / found
		row.LatencyMsP50 = Quantile(lat, 0.5)
		row.LatencyMsP95 = Quantile(lat, 0.95)
	}
	return row
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Quantile is the q-quantile of xs (nearest rank); 0 for none.
func Quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Expectation is what theory says of a row.
type Expectation struct {
	Messages float64 // per lookup
	Hops     float64 // to the first hit
	Success  float64
}

// DHT parameters of BEP 5 and the library's traversal.
const (
	kademliaK     = 8
	kademliaAlpha = 3
)

// Expect is the textbook expectation for a lookup in mode among n nodes, holders of which
// hold the content:
//   - dht: about log2(n) hops (Maymounkov and Mazières' bound); k + α·(hops-1) RPCs of two
//     messages each (a full traversal to the k closest); success 1 on a static network.
//   - flood: at most d((d-1)^t-1)/(d-2) query copies for TTL t and degree d (a tree: each
//     copy reaches a new node), and never more than the n(d-1)+1 of a saturated network;
//     the copies of the uncapped bound reach spread(n, bound) distinct nodes; success is the
//     chance that the nodes reached hold at least one of the h copies (see found), and the first hit comes at the first hop whose reach covers n/h nodes. A
//     measured row takes d at the overlay's mean degree (Row.MeanDegree).
//   - walk: w walkers of t steps each send w·t messages at most; their first step shares
//     the origin's d neighbours, d(1-(1-1/d)^w) nodes, and every later step is one more
//     copy: they reach spread(n, copies) nodes; success is found of that reach; the first hit after about (n/h)/w steps.
func Expect(mode string, n, ttl, degree, walkers, holders int) Expectation {
	return expect(mode, n, ttl, float64(degree), walkers, holders)
}

// expect is Expect at a mean degree d.
func expect(mode string, n, ttl int, d float64, walkers, holders int) Expectation {
	N, h := float64(n), float64(holders)
	r := h / N
	switch mode {
	case "dht":
		hops := math.Max(1, math.Log2(N))
		return Expectation{Messages: 2 * (kademliaK + kademliaAlpha*(math.Ceil(hops)-1)), Hops: hops, Success: 1}
	case "flood":
		copies := math.Min(floodBound(d, ttl), N*(d-1)+1)
		reached := spread(n, floodBound(d, ttl))
		hop := float64(ttl)
		for t := 1; t <= ttl; t++ {
			if floodBound(d, t) >= 1/r {
				hop = float64(t)
				break
			}
		}
		return Expectation{Messages: copies, Hops: hop, Success: found(n, holders, reached)}
	case "walk":
		w := float64(walkers)
		steps := w * float64(ttl)
		reached := spread(n, d*(1-math.Pow(1-1/d, w))+w*float64(ttl-1))
		return Expectation{Messages: steps, Hops: math.Min(float64(ttl), math.Ceil(1/r/w)), Success: found(n, holders, reached)}
	}
	return Expectation{}
}

// spread is how many distinct nodes, of the n-1 other than the origin, m copies of a query
// reach when each lands on a node as a random draw would: (n-1)(1-(1-1/(n-1))^m). Far below
// n it is about m (a tree), and it tends to n-1 as m grows past it.
func spread(n int, m float64) float64 {
	others := float64(n - 1)
	return others * (1 - math.Pow(1-1/others, m))
}

// found is the chance that a search reaching `reached` distinct nodes, out of the n-1 other
// than its origin, meets at least one of the holders placed among them at random: one less
// the hypergeometric chance of missing them all. Sampling without replacement matters at
// small n: a flood that reaches every node finds the one holder for certain.
func found(n, holders int, reached float64) float64 {
	others := float64(n - 1)
	miss := 1.0
	for i := range holders {
		miss *= math.Max(0, (others-reached-float64(i))/(others-float64(i)))
	}
	return 1 - miss
}

// FloodBound is d((d-1)^t-1)/(d-2): the query copies a flood of TTL t sends on a d-regular
// graph with no cycles within t hops, the most it can send.
func FloodBound(d, t int) float64 { return floodBound(float64(d), t) }

func floodBound(d float64, t int) float64 {
	return d * (math.Pow(d-1, float64(t)) - 1) / (d - 2)
}
