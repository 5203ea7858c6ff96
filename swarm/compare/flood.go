package compare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
)

func init() {
	builders["flood"] = func(ctx context.Context, b build) (network, error) { return buildOverlay(ctx, b, 0) }
	builders["walk"] = func(ctx context.Context, b build) (network, error) {
		return buildOverlay(ctx, b, b.cfg.Walkers)
	}
}

// How the overlay is built and measured.
const (
	// overlayPort is each simulated node's overlay port, and the BitTorrent port a holder
	// answers with.
	overlayPort = 6881
	// overlayJoin is how many earlier nodes a new node is given to join through.
	overlayJoin = 3
	// overlayMemory is how many query IDs a node remembers: lookups run one at a time, so a
	// few would do; the default (65,536) would cost gigabytes at 100,000 nodes.
	overlayMemory = 256
	// overlayBook is how many overlay addresses a node keeps (default 1,024).
	overlayBook = 32
	// overlayQueryRate lifts the per-neighbour query rate limit: compare measures the search,
	// back to back, not the overlay's defence against a flooding neighbour.
	overlayQueryRate = 1e9
	// overlaySimIdle is a simulated node's idle timeout (its pings go at a third of it):
	// 100,000 nodes pinging every 10 s would keep a core busy.
	overlaySimIdle = 10 * time.Minute
	// overlayLookupTimeout bounds how long a lookup's flood may take to die out.
	overlayLookupTimeout = 5 * time.Minute
	// overlayQuiet is how long the overlay must go without a link made or lost, every node
	// with Degree neighbours, to count as settled: a dialer counts a link before the other
	// side may refuse it, and dials under way when the last node became ready may still
	// land. Both take a round trip or two; nodes short of neighbours dial every 500 ms.
	overlayQuiet = 2 * time.Second
)

// overlayNet is a network of flood overlay nodes (peer/flood), on loopback TCP or on an
// in-memory network, sharing one Meter that counts every query and hit frame among them.
type overlayNet struct {
	nodes   []*flood.Node
	meter   *flood.Meter
	walkers int                // 0: flooding
	sim     *transport.Network // nil on loopback
	log     *slog.Logger
	degree  float64 // mean, once settled
}

// overlayIP is node i's address on loopback: 127.0.0.2, ... 127.0.0.254, 127.0.1.1, ... (no
// host byte 0 or 255; 127.0.0.1 left to others).
func overlayIP(i int) netip.Addr {
	k := i + 1
	hi := k / 254
	return netip.AddrFrom4([4]byte{127, byte(hi >> 8), byte(hi), byte(k%254 + 1)})
}

// buildOverlay starts b.n overlay nodes of degree cfg.Degree, each on its own address, and
// waits until every node has at least Degree neighbours. walkers > 0 makes it a network for
// random walks. A simulated network is built with no delay; cfg.Latency and cfg.Jitter are
// switched on once it has settled.
//
// Every node listens first; then the nodes start, one after the other, each joining through
// overlayJoin random others (a node not started yet takes the link once it starts; a full
// one answers with addresses of others), so that the overlay forms all at once, as a swarm
// that comes up together. Had each node joined only through earlier ones, each would dial
// D links of its own when it joins, and with 2D the most a node takes, a large overlay would
// fill up (mean degree near 2D) until the last nodes find no node with room for them.
func buildOverlay(ctx context.Context, b build, walkers int) (_ network, err error) {
	o := &overlayNet{meter: flood.NewMeter(), walkers: walkers, log: b.log}
	if b.cfg.Sim {
		o.sim = transport.NewNetwork()
	} else if err := checkFiles(b.n, b.cfg.Degree); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	began := time.Now()
	trs := make([]transport.Transport, 0, b.n)
	defer func() {
		for _, tr := range trs[len(o.nodes):] { // those no node took
			tr.Close()
		}
	}()
	for i := range b.n {
		tr, err := o.listen(i)
		if err != nil {
			return nil, err
		}
		trs = append(trs, tr)
	}
	o.nodes = make([]*flood.Node, 0, b.n)
	for i, tr := range trs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var boot []netip.AddrPort
		for len(boot) < min(b.n-1, overlayJoin) {
			if j := b.rng.IntN(b.n); j != i && !slices.Contains(boot, trs[j].Addr()) {
				boot = append(boot, trs[j].Addr())
			}
		}
		if err := o.start(tr, boot, b); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		b.progress(i + 1)
	}
	started := time.Since(began)
	wait, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(b.n)*5*time.Millisecond)
	defer cancel()
	if err := o.settle(wait, b.n); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var short []string
		for i, nd := range o.nodes {
			if k := nd.Neighbours(); k < b.cfg.Degree && len(short) < 5 {
				short = append(short, fmt.Sprintf("node %d (%v) has %d", i, nd.Addr(), k))
			}
		}
		return nil, fmt.Errorf("the overlay did not settle: %d of %d nodes have %d neighbours after %v (%s)",
			o.meter.Ready(), b.n, b.cfg.Degree, time.Since(began).Round(time.Second), strings.Join(short, ", "))
	}
	if o.sim != nil {
		o.sim.SetDelay(b.cfg.Latency, b.cfg.Jitter)
	}
	links := 0
	for _, nd := range o.nodes {
		links += nd.Neighbours()
	}
	o.degree = float64(links) / float64(b.n)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.log.Info("overlay settled", "started", started.Round(time.Millisecond), "settled", time.Since(began).Round(time.Millisecond),
		"links", links/2, "mean_degree", fmt.Sprintf("%.2f", float64(links)/float64(b.n)),
		"goroutines", runtime.NumGoroutine(), "heap_mib", ms.HeapAlloc>>20, "stack_mib", ms.StackInuse>>20, "sys_mib", ms.Sys>>20)
	return o, nil
}

// settle waits until all n nodes have Degree neighbours and no link has been made or lost
// for overlayQuiet.
func (o *overlayNet) settle(ctx context.Context, n int) error {
	for {
		if err := o.meter.WaitReady(ctx, n); err != nil {
			return err
		}
		churn := o.meter.Churn()
		select {
		case <-time.After(overlayQuiet):
		case <-ctx.Done():
			return ctx.Err()
		}
		if o.meter.Churn() == churn && o.meter.Ready() == n {
			return nil
		}
	}
}

// listen opens node i's transport.
func (o *overlayNet) listen(i int) (transport.Transport, error) {
	if o.sim != nil {
		return o.sim.Listen(netip.AddrPortFrom(overlayIP(i), overlayPort))
	}
	return transport.ListenTCP(netip.AddrPortFrom(overlayIP(i), 0).String())
}

// start starts a node on tr, joining through boot; the node owns tr from then on.
func (o *overlayNet) start(tr transport.Transport, boot []netip.AddrPort, b build) error {
	cfg := flood.Config{
		Transport: tr, Bootstrap: boot, Degree: b.cfg.Degree, Seed: b.rng.Uint64() | 1,
		QueryRate: overlayQueryRate, Logger: b.log, Meter: o.meter,
		Memory: overlayMemory, Book: overlayBook,
	}
	if o.sim != nil {
		cfg.IdleTimeout = overlaySimIdle
	}
	nd, err := flood.New(cfg)
	if err != nil {
		return err
	}
	o.nodes = append(o.nodes, nd)
	return nil
}

// MeanDegree is the overlay's mean degree once it settled: its nodes keep D..2D links.
func (o *overlayNet) MeanDegree() float64 { return o.degree }

// Place makes the holders answer queries for ih.
func (o *overlayNet) Place(ctx context.Context, ih metainfo.Hash, holders []int) error {
	for _, i := range holders {
		if err := o.nodes[i].Announce(ctx, peer.Announcement{InfoHash: ih, Port: overlayPort}); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	return nil
}

// Lookup floods a query from node from with the given TTL (or sends the network's walkers of
// ttl steps), waits until every frame it caused has been handled, and reads its cost off the
// Meter: lookups run one at a time, and nothing else in the overlay sends queries or hits.
func (o *overlayNet) Lookup(ctx context.Context, from int, ih metainfo.Hash, ttl int) (Result, error) {
	before := o.meter.Count()
	tr, err := o.nodes[from].Trace(ctx, ih, ttl, o.walkers)
	if err != nil {
		return Result{}, err
	}
	wait, cancel := context.WithTimeout(ctx, overlayLookupTimeout)
	err = o.meter.WaitIdle(wait)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("the flood did not die out within %v (%d frames in flight; a link failed?)", overlayLookupTimeout, o.meter.InFlight())
	}
	got, err := tr.End(ctx)
	if err != nil {
		return Result{}, err
	}
	c := o.meter.Count().Sub(before)
	return Result{Found: got.Found(), Messages: c.Messages(), Bytes: c.Bytes, NodesReached: int(c.Reached),
		Hops: got.Hops, Latency: got.FirstHit}, nil
}

// Close stops every node.
func (o *overlayNet) Close() error {
	var errs []error
	for _, nd := range o.nodes {
		errs = append(errs, nd.Close())
	}
	return errors.Join(errs...)
}
