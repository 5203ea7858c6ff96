package swarm_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/swarm"
)

// record collects a Fetch's events.
type record struct{ events []swarm.Event }

func (r *record) emit(e swarm.Event) { r.events = append(r.events, e) }

func (r *record) of(kind string) []swarm.Event {
	var out []swarm.Event
	for _, e := range r.events {
		if swarm.Kind(e) == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestChurn: 10 nodes by DHT, one seeder; 3 of the 9 leechers (a churn of 0.3) are killed
// abruptly midway, each holding 10 to 60% of the file; the other 6 still complete, every
// copy's sha256 checked. Downloads are capped at 2 MiB/s a node, so that each takes about two
// seconds and the kills land mid-download.
func TestChurn(t *testing.T) {
	const size = 4 << 20
	var rec record
	plan := swarm.Plan{
		Config:  swarm.Config{Nodes: 10, Mode: "dht", Dir: t.TempDir(), DownloadRate: 2 << 20, Logger: swarm.TestLogger(t, slog.LevelError)},
		Seeders: 1, Size: size, Files: 1, Churn: 0.3, Timeout: 90 * time.Second,
	}
	rep, err := plan.Run(t.Context(), rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("churn: %d killed, %d verified in %.2f s; complete p50 %.2f s; leechers uploaded %d, seeders %d",
		rep.Killed, rep.Verified, rep.Seconds, rep.Complete.P50, rep.UploadedByLeechers, rep.UploadedBySeeders)
	if !rep.OK || rep.Killed != 3 || rep.Completed != 6 || rep.Verified != 6 || rep.Failed != 0 || rep.Leechers != 9 {
		t.Fatalf("report %+v", rep)
	}
	killed := rec.of("killed")
	if len(killed) != 3 {
		t.Fatalf("%d killed events, want 3", len(killed))
	}
	dead := map[int]bool{}
	for _, e := range killed {
		k := e.(swarm.Killed)
		dead[k.Node] = true
		if k.Completed < size/10 || k.Completed >= size || k.Node == 0 {
			t.Errorf("node %d killed holding %d of %d bytes: want a leecher midway", k.Node, k.Completed, size)
		}
	}
	for _, e := range rec.of("complete") {
		if c := e.(swarm.Complete); dead[c.Node] {
			t.Errorf("node %d both killed and complete", c.Node)
		}
	}
	for _, n := range rep.PerNode {
		if dead[n.Node] != (n.State == "killed") {
			t.Errorf("node %d: state %s", n.Node, n.State)
		}
	}
	if launch := rec.of("start"); len(launch) != 1 || launch[0].(swarm.Launch).Kills != 3 {
		t.Fatalf("start events %+v", launch)
	}
	if got := len(rec.of("complete")); got != 6 {
		t.Fatalf("%d complete events, want 6", got)
	}
}

// Two seeders share a folder of five files with six leechers through the tracker; every file
// of every copy checks.
func TestSeedersAndFiles(t *testing.T) {
	const size = 3<<20 + 7
	var rec record
	plan := swarm.Plan{
		Config:  swarm.Config{Nodes: 8, Mode: "tracker", Logger: swarm.TestLogger(t, slog.LevelError)},
		Seeders: 2, Size: size, Files: 5, Timeout: 90 * time.Second,
	}
	rep, err := plan.Run(t.Context(), rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Seeders != 2 || rep.Leechers != 6 || rep.Verified != 6 || rep.Files != 5 || rep.Size != size {
		t.Fatalf("report %+v", rep)
	}
	launch := rec.of("start")[0].(swarm.Launch)
	if len(launch.Seeders) != 2 || launch.Seeders[0] != 0 || launch.Seeders[1] != 1 || len(launch.Leechers) != 6 {
		t.Fatalf("start %+v", launch)
	}
	if rep.UploadedBySeeders < size || rep.Downloaded < 6*size || rep.UploadedBySeeders+rep.UploadedByLeechers < rep.Downloaded {
		t.Fatalf("uploaded %d by seeders, %d by leechers; downloaded %d", rep.UploadedBySeeders, rep.UploadedByLeechers, rep.Downloaded)
	}
	if rep.Discovery.Announces == 0 || rep.Discovery.Sent == 0 || rep.FirstPeer.N != 6 || rep.Complete.N != 6 {
		t.Fatalf("discovery %+v, first peer %+v, complete %+v", rep.Discovery, rep.FirstPeer, rep.Complete)
	}
	var seeders int64
	for _, n := range rep.PerNode[:2] {
		if n.Role != "seeder" || n.State != "seeding" || n.Completed != size {
			t.Errorf("node %d: %+v, want a seeder", n.Node, n)
		}
		seeders += n.Uploaded
	}
	if seeders != rep.UploadedBySeeders {
		t.Errorf("the seeders uploaded %d, the report says %d", seeders, rep.UploadedBySeeders)
	}
}

// With its only seeder killed, a Fetch cannot complete: it ends at its timeout, not OK, and
// says which nodes are missing what.
func TestKilledSeeder(t *testing.T) {
	s := swarm.New(t, 3, swarm.WithTestLog(slog.LevelError))
	path, err := swarm.WriteContent(t.TempDir(), 1<<20, 1)
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.Seed(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(0); err != nil {
		t.Fatal(err)
	}
	if err := s.Kill(0); err != nil {
		t.Fatal(err)
	}
	if s.Alive(0) || !s.Alive(1) {
		t.Fatal("node 0 alive after Kill, or node 1 not")
	}
	if _, err := s.Seed(t.Context(), path, 0); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("seeding from a killed node: %v", err)
	}
	rep, err := s.Fetch(t.Context(), src, swarm.FetchOptions{Timeout: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Failed != 2 || rep.Seeders != 0 || !strings.Contains(rep.Reason, "not complete after 2s") {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("reason: %s", rep.Reason)
}

// Fetch refuses nodes that cannot fetch: out of range, repeated, or holding the torrent already.
func TestFetchRefuses(t *testing.T) {
	s := swarm.New(t, 3)
	path, err := swarm.WriteContent(t.TempDir(), 600<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	src, err := s.Seed(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	for _, nodes := range [][]int{{0}, {5}, {-1}, {1, 1}} {
		if _, err := s.Fetch(t.Context(), src, swarm.FetchOptions{Nodes: nodes}, nil); err == nil {
			t.Errorf("fetching on nodes %v: no error", nodes)
		}
	}
	if _, err := s.Fetch(t.Context(), src, swarm.FetchOptions{Churn: 1}, nil); err == nil {
		t.Error("a churn of 1: no error")
	}
	rep, err := s.Fetch(t.Context(), src, swarm.FetchOptions{Nodes: []int{2}, Timeout: 60 * time.Second}, nil)
	if err != nil || !rep.OK || rep.Verified != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	if _, err := s.Fetch(t.Context(), src, swarm.FetchOptions{Nodes: []int{2}}, nil); err == nil {
		t.Error("fetching again on a node that has the torrent: no error")
	}
	// Node 1 is the only one left without it.
	rep, err = s.Fetch(t.Context(), src, swarm.FetchOptions{Timeout: 60 * time.Second}, nil)
	if err != nil || !rep.OK || rep.Leechers != 1 || rep.PerNode[len(rep.PerNode)-1].Node != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
}
