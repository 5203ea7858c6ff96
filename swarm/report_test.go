package swarm

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer"
)

func TestSpread(t *testing.T) {
	var xs []float64
	for i := 20; i >= 1; i-- {
		xs = append(xs, float64(i))
	}
	got := spread(xs)
	want := Spread{N: 20, P50: 10.5, P95: 19.05, Max: 20}
	if got.N != want.N || math.Abs(got.P50-want.P50) > 1e-9 || math.Abs(got.P95-want.P95) > 1e-9 || got.Max != want.Max {
		t.Fatalf("spread(20..1) = %+v, want %+v", got, want)
	}
	if xs[0] != 20 {
		t.Fatal("spread sorted its argument")
	}
	if got := spread([]float64{3}); got != (Spread{N: 1, P50: 3, P95: 3, Max: 3}) {
		t.Fatalf("spread of one value: %+v", got)
	}
	if got := spread(nil); got != (Spread{}) {
		t.Fatalf("spread of nothing: %+v", got)
	}
}

func TestKills(t *testing.T) {
	for _, c := range []struct {
		share float64
		n     int
		want  int
	}{{0, 9, 0}, {0.3, 9, 3}, {0.3, 10, 3}, {0.25, 2, 1}, {0.1, 4, 0}, {0.99, 5, 4}, {0.5, 1, 0}} {
		if got := Kills(c.share, c.n); got != c.want {
			t.Errorf("Kills(%v, %d) = %d, want %d", c.share, c.n, got, c.want)
		}
	}
}

func TestAddr(t *testing.T) {
	for i, want := range map[int]string{0: "127.0.0.2", 252: "127.0.0.254", 253: "127.0.1.2", 999: "127.0.3.242"} {
		if got := Addr(i).String(); got != want {
			t.Errorf("Addr(%d) = %s, want %s", i, got, want)
		}
	}
	seen := map[string]bool{}
	for i := range MaxNodes {
		a := Addr(i)
		if seen[a.String()] || !a.IsLoopback() || a.As4()[3] < 2 || a.As4()[3] > 254 {
			t.Fatalf("Addr(%d) = %s: taken, or not 127.0.x.2..254", i, a)
		}
		seen[a.String()] = true
	}
}

func TestPlanCheck(t *testing.T) {
	good := Plan{Config: Config{Nodes: 4, Mode: "dht"}, Seeders: 1, Size: 10, Files: 1}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		change func(*Plan)
		want   string
	}{
		{func(p *Plan) { p.Nodes = 1 }, "at least 2"},
		{func(p *Plan) { p.Nodes = MaxNodes + 1 }, "want 1..1000"},
		{func(p *Plan) { p.Mode = "gossip" }, `mode "gossip"`},
		{func(p *Plan) { p.Seeders = 0 }, "0 seeders"},
		{func(p *Plan) { p.Seeders = 4 }, "fewer than the 4 nodes"},
		{func(p *Plan) { p.Size = 0 }, "at least 1 byte"},
		{func(p *Plan) { p.Files = 11 }, "a byte a file"},
		{func(p *Plan) { p.Files = 0 }, "0 files"},
		{func(p *Plan) { p.Churn = 1 }, "churn 1"},
		{func(p *Plan) { p.Churn = -0.1 }, "churn -0.1"},
		{func(p *Plan) { p.Timeout = -time.Second }, "timeout"},
		{func(p *Plan) { p.DownloadRate = -1 }, "negative"},
	} {
		p := good
		c.change(&p)
		err := p.Check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", p, err, c.want)
		}
	}
}

func TestWriteContentAndVerify(t *testing.T) {
	dir := t.TempDir()
	one, err := WriteContent(filepath.Join(dir, "a"), 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(one); err != nil || fi.Size() != 1000 || filepath.Base(one) != "payload.bin" {
		t.Fatalf("%s: %v %v", one, fi, err)
	}
	folder, err := WriteContent(filepath.Join(dir, "b"), 1003, 4)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for k, want := range []int64{251, 251, 251, 250} {
		fi, err := os.Stat(filepath.Join(folder, "part-000"+string(rune('1'+k))+".bin"))
		if err != nil || fi.Size() != want {
			t.Fatalf("part %d: %v %v, want %d bytes", k+1, fi, err, want)
		}
		total += fi.Size()
	}
	if total != 1003 {
		t.Fatalf("%d bytes in all", total)
	}
	if _, err := WriteContent(dir, 3, 4); err == nil {
		t.Fatal("4 files in 3 bytes")
	}

	// Copies: one exact, one with a byte changed, one with a file missing, one absent.
	copyTree := func(name string) string {
		dst := filepath.Join(dir, name, "payload")
		if err := os.CopyFS(dst, os.DirFS(folder)); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	exact, changed, short := copyTree("exact"), copyTree("changed"), copyTree("short")
	b, err := os.ReadFile(filepath.Join(changed, "part-0003.bin"))
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1
	if err := os.WriteFile(filepath.Join(changed, "part-0003.bin"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(short, "part-0004.bin")); err != nil {
		t.Fatal(err)
	}
	absent := filepath.Join(dir, "absent", "payload")
	bad, err := verify(folder, []string{exact, changed, short, absent})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bad[exact]; ok || len(bad) != 3 ||
		!strings.Contains(bad[changed], "sha256 of "+filepath.Join(changed, "part-0003.bin")) ||
		!strings.Contains(bad[short], "3 files, want 4") || !strings.Contains(bad[absent], "no such file") {
		t.Fatalf("verify: %q", bad)
	}
	if bad, err := verify(one, []string{one}); err != nil || len(bad) != 0 {
		t.Fatalf("a single file against itself: %v %q", err, bad)
	}
	if _, err := verify(absent, nil); err == nil {
		t.Fatal("verify against a missing original")
	}
}

func TestReport(t *testing.T) {
	r := &Report{Event: "summary", Mode: "dht", Name: "payload.bin", Size: 100 << 20, Files: 1, Pieces: 400}
	stats := peer.SearchStats{Announces: 1, Lookups: 2, Sent: 10, Received: 9}
	r.add(NodeResult{Node: 0, Role: "seeder", State: "seeding", Uploaded: 150 << 20, Discovery: stats})
	r.add(NodeResult{Node: 1, Role: "leecher", State: "complete", FirstPeer: 0.5, Seconds: 4, Uploaded: 40 << 20, Discovery: stats})
	r.add(NodeResult{Node: 2, Role: "leecher", State: "complete", FirstPeer: 1.5, Seconds: 6, Uploaded: 10 << 20, Discovery: stats})
	r.add(NodeResult{Node: 3, Role: "leecher", State: "killed", Addr: "127.0.0.5", FirstPeer: 1, Completed: 30 << 20, Discovery: stats})
	r.Verified, r.UploadedBySeeders, r.UploadedByLeechers = 2, 150<<20, 50<<20
	r.finish(nil)
	if !r.OK || r.Reason != "" || r.Completed != 2 || r.Killed != 1 || r.Nodes != 4 || r.Leechers != 3 ||
		r.FirstPeer.N != 3 || r.FirstPeer.P50 != 1 || r.Complete.Max != 6 || r.DiscoveryPerNode.Sent != 10 || r.Discovery.Lookups != 8 {
		t.Fatalf("%+v", r)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"4 nodes by dht: 1 seeder, 3 leechers; payload.bin, 100.0 MiB in 1 file, 400 pieces",
		"ok: all 2 leechers left alive hold the content, sha256 verified",
		"first peer  p50 1.00 s",
		"by seeders 150.0 MiB (75%), by leechers to each other 50.0 MiB (25%)",
		"40 messages sent, 36 received",
		"killed      3 (127.0.0.5, at 30%)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"event", "ok", "first_peer_seconds", "complete_seconds", "uploaded_by_seeders", "uploaded_by_leechers", "discovery", "discovery_per_node", "failures", "per_node"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, js)
		}
	}
	if f, ok := m["failures"].([]any); !ok || len(f) != 0 {
		t.Errorf("failures = %v, want []", m["failures"])
	}

	r.Verified = 1
	r.finish([]Failure{{Node: 2, Addr: "127.0.0.4", Reason: "sha256 of x differs from the original"}, {Node: 5, Reason: "y"}})
	if r.OK || r.Failed != 2 || r.Reason != "1 of 2 leechers left alive hold the verified content; node 2 (127.0.0.4): sha256 of x differs from the original (and 1 more)" {
		t.Fatalf("%+v", r)
	}
}
