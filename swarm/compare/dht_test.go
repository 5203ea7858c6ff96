package compare_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/swarm/compare"
)

// testLog logs through t at Warn: a lost reply or a node's complaint shows in the test's output.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(b))
	return len(b), nil
}

// dhtRow runs the DHT at 200 nodes, 60 lookups, and checks what textbook Kademlia promises on
// a static network: every lookup succeeds, in a few hops, for a few dozen messages.
func dhtRow(t *testing.T, sim bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := compare.Config{Nodes: []int{200}, Modes: []string{"dht"}, Lookups: 60, Seed: 42, Sim: sim, Logger: testLog(t)}
	if sim {
		cfg.Latency, cfg.Jitter = time.Millisecond, time.Millisecond
	}
	var builds, lookups int
	cfg.Progress = func(p compare.Progress) {
		switch p.Phase {
		case "build":
			builds++
		case "lookup":
			lookups++
		}
	}
	began := time.Now()
	rows, err := compare.Run(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	t.Logf("%v: %+v", time.Since(began).Round(time.Millisecond), r)
	if r.Mode != "dht" || r.Nodes != 200 || r.Sim != sim || r.Holders != 2 || r.Lookups != 60 || builds == 0 || lookups != 60 {
		t.Errorf("row %+v, %d build and %d lookup progress reports", r, builds, lookups)
	}
	if r.SuccessRate != 1 {
		t.Errorf("success rate %v, want 1", r.SuccessRate)
	}
	// Each lookup queries a dozen nodes or so (k = 8, α = 3), two messages each.
	if r.MessagesPerLookup < 2*8 || r.MessagesPerLookup > 60 || r.MessagesPerLookupP95 > 100 {
		t.Errorf("%.1f messages per lookup (p95 %.0f), want 16..60 (p95 at most 100)", r.MessagesPerLookup, r.MessagesPerLookupP95)
	}
	if r.NodesReached < 8 || r.NodesReached > 30 || r.MessagesPerLookup < 2*r.NodesReached-0.01 {
		t.Errorf("%.1f nodes reached for %.1f messages", r.NodesReached, r.MessagesPerLookup)
	}
	if r.HopsToFirstHit < 1 || r.HopsToFirstHit > 4 {
		t.Errorf("%.2f hops to the first hit, want 1..4", r.HopsToFirstHit)
	}
	if r.BytesPerLookup < 50*r.MessagesPerLookup {
		t.Errorf("%.0f bytes for %.1f messages", r.BytesPerLookup, r.MessagesPerLookup)
	}
	// In the simulation each hop is a round trip of 2..4 ms.
	if sim && r.LatencyMsP50 < 2*r.HopsToFirstHit*0.9 {
		t.Errorf("median latency %.2f ms for %.2f hops at 2..4 ms a round trip", r.LatencyMsP50, r.HopsToFirstHit)
	}
}

func TestDHTReal(t *testing.T) { dhtRow(t, false) }
func TestDHTSim(t *testing.T)  { dhtRow(t, true) }
