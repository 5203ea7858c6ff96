package compare_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/swarm/compare"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Tolerances between a simulated run and a loopback run of the same seed. The DHT's
// traversal and the overlay's shape depend on timing (which replies come first, which links
// form first), so the two networks are alike but not the same. In 4 runs of this test
// (2026-11-22, the machine busy) messages per lookup were 1.6 to 10% apart (DHT: 24.2..25.5
// on loopback, 25.9..26.6 simulated; flood: 892..919 and 925..943) and success was 1.00 in
// every row; the bounds are twice the widest gap, and three failed lookups in 60.
const (
	simMessagesTolerance = 0.20 // relative, on messages per lookup
	simSuccessTolerance  = 0.05 // absolute, on the success rate
)

// The experiment's headline at 200 nodes, on loopback and simulated: a DHT lookup costs
// O(log N) messages, an order of magnitude fewer than a flood; a flood of TTL 7 finds the
// content nearly always; and the simulation agrees with the real sockets.
func TestCrossMode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 200
	run := func(sim bool) map[string]compare.Row {
		cfg := compare.Config{Nodes: []int{n}, Modes: []string{"dht", "flood"}, TTLs: []int{7},
			Lookups: 60, Seed: 7, Sim: sim, Logger: testLog(t)}
		if sim {
			cfg.Latency, cfg.Jitter = time.Millisecond, time.Millisecond
		}
		began := time.Now()
		rows, err := compare.Run(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]compare.Row{}
		for _, r := range rows {
			out[r.Mode] = r
			t.Logf("sim=%v %s: success %.2f (theory %.2f), %.1f messages (p95 %.0f, theory %.0f), %.1f nodes reached, %.2f hops",
				sim, r.Mode, r.SuccessRate, r.ExpectedSuccess, r.MessagesPerLookup, r.MessagesPerLookupP95,
				r.ExpectedMessages, r.NodesReached, r.HopsToFirstHit)
		}
		t.Logf("sim=%v: %v", sim, time.Since(began).Round(time.Millisecond))
		if len(out) != 2 {
			t.Fatalf("rows %+v, want one dht and one flood", rows)
		}
		return out
	}
	real, sim := run(false), run(true)

	for _, rows := range []map[string]compare.Row{real, sim} {
		dht, fl := rows["dht"], rows["flood"]
		net := fmt.Sprintf("sim=%v", dht.Sim)
		// k = 8 and α = 3: a traversal queries k nodes and α more a round, for about log2 N
		// rounds at most; two messages a query.
		if bound := 2 * (8 + 3*math.Ceil(math.Log2(n))); dht.MessagesPerLookup > bound {
			t.Errorf("%s: DHT %.1f messages per lookup, want O(log N): at most %.0f", net, dht.MessagesPerLookup, bound)
		}
		if dht.MessagesPerLookup*10 > fl.MessagesPerLookup {
			t.Errorf("%s: DHT %.1f messages per lookup against flooding's %.1f: want at least 10 times fewer",
				net, dht.MessagesPerLookup, fl.MessagesPerLookup)
		}
		if dht.SuccessRate < 0.95 || fl.SuccessRate < 0.95 {
			t.Errorf("%s: success DHT %.2f, flood TTL 7 %.2f: want both at least 0.95", net, dht.SuccessRate, fl.SuccessRate)
		}
		// TTL 7 at degree 4..8 covers 200 nodes: nearly every node gets the query.
		if fl.NodesReached < 0.9*n {
			t.Errorf("%s: a flood of TTL 7 reached %.0f of %d nodes", net, fl.NodesReached, n)
		}
	}
	for _, mode := range []string{"dht", "flood"} {
		r, s := real[mode], sim[mode]
		if d := math.Abs(s.MessagesPerLookup-r.MessagesPerLookup) / r.MessagesPerLookup; d > simMessagesTolerance {
			t.Errorf("%s: %.1f messages per lookup simulated, %.1f on loopback: %.0f%% apart, want at most %.0f%%",
				mode, s.MessagesPerLookup, r.MessagesPerLookup, 100*d, 100*simMessagesTolerance)
		}
		if d := math.Abs(s.SuccessRate - r.SuccessRate); d > simSuccessTolerance {
			t.Errorf("%s: success %.2f simulated, %.2f on loopback: want at most %.2f apart", mode, s.SuccessRate, r.SuccessRate, simSuccessTolerance)
		}
	}
}
