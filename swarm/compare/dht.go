package compare

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/dht"
	"github.com/shoalp2p/shoal/swarm/simnet"
)

func init() { builders["dht"] = buildDHT }

const (
	// dhtPort is each simulated node's UDP port, and the TCP port a holder announces.
	dhtPort = 6881
	// dhtWorkers is how many nodes join, or announce, at once.
	dhtWorkers = 16
	// dhtTimeout is how long a query waits for its reply (a simulated network adds two
	// worst-case trips): more than a node's 400 ms default, because the machine is busy while
	// a network is built, and nothing is lost on loopback or in memory but to an overflowing
	// socket buffer.
	dhtTimeout = 2 * time.Second
	// dhtTries is how many times a node tries to join before the build fails.
	dhtTries = 3
	// dhtBoot is how many nodes a joining node is given to join through (so that no node
	// is asked by every newcomer).
	dhtBoot = 3
)

// dhtNet is a network of DHT nodes: mainline DHT servers (anacrolix/dht through peer/dht),
// on loopback sockets or on an in-memory network, sharing one Meter that counts every
// get_peers query and reply among them.
type dhtNet struct {
	nodes   []*dht.Node
	meter   *dht.Meter
	sim     *simnet.Network // nil on loopback
	timeout time.Duration
	log     *slog.Logger

	holders map[netip.AddrPort]bool // the addresses Place announced
}

// nodeIP is node i's address: 127.0.0.1, 127.0.0.2, ... 127.0.0.254, 127.0.1.1, ... (no host
// byte 0 or 255).
func nodeIP(i int) netip.Addr {
	hi := i / 254
	return netip.AddrFrom4([4]byte{127, byte(hi >> 8), byte(hi), byte(i%254 + 1)})
}

// buildDHT starts b.n nodes, each on its own address, and joins them: node i joins with the
// protocol's bootstrap (Kademlia's join: a lookup of its own id, then of an id in each
// bucket farther than its closest neighbour) through dhtBoot nodes that have joined already,
// picked at random (node 0 at first), as soon as it starts, dhtWorkers at a time. A
// simulated network is built with no latency, which is switched on once the network is
// complete.
func buildDHT(ctx context.Context, b build) (_ network, err error) {
	d := &dhtNet{meter: dht.NewMeter(), timeout: dhtTimeout, log: b.log, holders: make(map[netip.AddrPort]bool)}
	if b.cfg.Sim {
		d.sim = simnet.New(simnet.Config{Seed: b.rng.Uint64()})
		d.timeout += 2 * (b.cfg.Latency + b.cfg.Jitter)
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	began := time.Now()
	ids := make([][20]byte, b.n)
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(b.rng.Uint32())
		}
	}
	d.nodes = make([]*dht.Node, b.n)
	if d.nodes[0], err = d.start(ids[0], nodeIP(0), nil); err != nil {
		return nil, err
	}
	var mu sync.Mutex
	joined := []string{d.nodes[0].Addr().String()}
	pick := rand.New(rand.NewPCG(b.rng.Uint64(), b.rng.Uint64()))
	err = parallel(ctx, b.n-1, func(ctx context.Context, j int) error {
		i := j + 1
		mu.Lock()
		var boot []string
		for range dhtBoot {
			if a := joined[pick.IntN(len(joined))]; !slices.Contains(boot, a) {
				boot = append(boot, a)
			}
		}
		mu.Unlock()
		nd, err := d.start(ids[i], nodeIP(i), boot)
		if err != nil {
			return err
		}
		d.nodes[i] = nd
		for try := 1; ; try++ {
			err := nd.Bootstrap(ctx)
			if err == nil {
				break
			}
			if try == dhtTries || ctx.Err() != nil {
				return fmt.Errorf("node %d (%v) could not join: %w", i, nd.Addr(), err)
			}
			d.log.Warn("DHT: a node could not join; trying again", "node", i, "err", err)
		}
		mu.Lock()
		joined = append(joined, nd.Addr().String())
		b.progress(len(joined)) // under mu: one report at a time, counting up
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if d.sim != nil {
		d.sim.SetLatency(b.cfg.Latency, b.cfg.Jitter)
	}
	sizes := make([]int, b.n)
	for i, nd := range d.nodes {
		sizes[i] = nd.NumNodes()
	}
	slices.Sort(sizes)
	b.log.Debug("DHT network built", "took", time.Since(began).Round(time.Millisecond),
		"table_min", sizes[0], "table_median", sizes[b.n/2], "table_max", sizes[b.n-1])
	return d, nil
}

// start opens node i's socket and starts its DHT node: real or simulated, never joining by
// itself, its get_peers traffic counted by the network's Meter.
func (d *dhtNet) start(id [20]byte, ip netip.Addr, boot []string) (*dht.Node, error) {
	cfg := dht.Config{ID: id, Bootstrap: boot, Manual: true, Meter: d.meter, QueryTimeout: d.timeout}
	if boot == nil {
		cfg.Bootstrap = []string{} // the first node: nil would mean the public routers
	}
	if d.sim != nil {
		c, err := d.sim.Listen(netip.AddrPortFrom(ip, dhtPort))
		if err != nil {
			return nil, err
		}
		cfg.Conn = c
		n, err := dht.New(cfg)
		if err != nil {
			c.Close()
		}
		return n, err
	}
	cfg.Listen = netip.AddrPortFrom(ip, 0).String()
	return dht.New(cfg)
}

// parallel runs f(ctx, 0..n-1), dhtWorkers at a time, in order of i; the first error stops
// it, and is returned once every f running has returned.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := min(n, max(dhtWorkers, runtime.GOMAXPROCS(0)))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// Place announces ih from every holder, with dhtPort as its TCP port, and waits until the
// announces' last get_peers reply has come.
func (d *dhtNet) Place(ctx context.Context, ih metainfo.Hash, holders []int) error {
	for _, i := range holders {
		d.holders[netip.AddrPortFrom(d.nodes[i].Addr().Addr(), dhtPort)] = true
	}
	err := parallel(ctx, len(holders), func(ctx context.Context, j int) error {
		i := holders[j]
		if err := d.nodes[i].Announce(ctx, peer.Announcement{InfoHash: ih, Port: dhtPort, Event: peer.EventStarted}); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.settle(ctx)
	return ctx.Err()
}

// Lookup runs a traced get_peers lookup from node from and waits until every reply to its
// queries has come, or is given up as lost: its messages are then the Meter's count of the
// get_peers queries and replies sent, network-wide, while it ran. (Pings, find_node and
// announce_peer are not counted; nothing else looks up while it runs.)
func (d *dhtNet) Lookup(ctx context.Context, from int, ih metainfo.Hash, _ int) (Result, error) {
	d.settle(ctx)
	before := d.meter.Traffic()
	tr, err := d.nodes[from].Trace(ctx, ih)
	if err != nil {
		return Result{}, err
	}
	d.settle(ctx)
	got := d.meter.Traffic().Sub(before)
	r := Result{Messages: got.Messages(), Bytes: got.Bytes(), NodesReached: tr.Queries}
	for _, p := range tr.Peers {
		if d.holders[p] {
			r.Found, r.Hops, r.Latency = true, tr.Hops, tr.FirstPeer
			break
		}
	}
	return r, ctx.Err()
}

// settle waits until every get_peers query sent has had its reply, for at most two query
// timeouts: a reply that has not come by then was lost.
func (d *dhtNet) settle(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*d.timeout)
	defer cancel()
	if lost, err := d.meter.Settle(ctx); lost > 0 {
		d.log.Warn("DHT: get_peers replies lost", "lost", lost, "err", err)
	}
}

// Close stops every node, then the simulated network.
func (d *dhtNet) Close() error {
	var errs []error
	for _, nd := range d.nodes {
		if nd != nil {
			errs = append(errs, nd.Close())
		}
	}
	if d.sim != nil {
		errs = append(errs, d.sim.Close())
	}
	return errors.Join(errs...)
}
