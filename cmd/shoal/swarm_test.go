package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/swarm"
)

// swarmRun runs the shoal binary with args and returns its exit status, its JSON lines (when
// stdout holds any) and the raw outputs.
func swarmRun(t *testing.T, args ...string) (code int, events []map[string]any, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(shoalBin(t), args...)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("shoal %s still running after 2 minutes", strings.Join(args, " "))
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			events = append(events, e)
		}
	}
	return code, events, out.String(), errw.String()
}

// byKind counts events by name, and returns the last one of each.
func byKind(events []map[string]any) (map[string]int, map[string]map[string]any) {
	n, last := map[string]int{}, map[string]map[string]any{}
	for _, e := range events {
		k, _ := e["event"].(string)
		n[k]++
		last[k] = e
	}
	return n, last
}

// shoal swarm --nodes 6 --size 2MiB --json: one start, a complete for each of the 5 leechers,
// and last a summary with every key, all verified; exit 0.
func TestSwarmJSON(t *testing.T) {
	code, events, stdout, stderr := swarmRun(t, "swarm", "--nodes", "6", "--size", "2MiB", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr: %q", stderr)
	}
	n, last := byKind(events)
	if n["start"] != 1 || n["complete"] != 5 || n["summary"] != 1 || n["killed"] != 0 || n["failed"] != 0 {
		t.Fatalf("events by kind: %v", n)
	}
	if events[0]["event"] != "start" || events[len(events)-1]["event"] != "summary" {
		t.Fatalf("first %v, last %v", events[0], events[len(events)-1])
	}
	start, sum := last["start"], last["summary"]
	if start["mode"] != "dht" || start["size"] != float64(2<<20) || len(start["leechers"].([]any)) != 5 {
		t.Fatalf("start: %v", start)
	}
	for _, k := range []string{"ok", "mode", "infohash", "name", "size", "files", "pieces", "nodes", "seeders", "leechers",
		"completed", "verified", "killed", "failed", "seconds", "first_peer_seconds", "complete_seconds",
		"uploaded_by_seeders", "uploaded_by_leechers", "downloaded", "discovery", "discovery_per_node", "failures", "per_node"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("summary lacks %q", k)
		}
	}
	if sum["ok"] != true || sum["verified"] != float64(5) || sum["nodes"] != float64(6) || sum["seeders"] != float64(1) ||
		sum["infohash"] != start["infohash"] {
		t.Fatalf("summary: %v", sum)
	}
	spread := sum["complete_seconds"].(map[string]any)
	if spread["n"] != float64(5) || spread["max"].(float64) <= 0 || spread["p50"].(float64) > spread["max"].(float64) {
		t.Fatalf("complete_seconds: %v", spread)
	}
	up := sum["uploaded_by_seeders"].(float64) + sum["uploaded_by_leechers"].(float64)
	if sum["uploaded_by_seeders"].(float64) < 2<<20 || up < 5*(2<<20) {
		t.Fatalf("uploaded: %v by seeders, %v in all", sum["uploaded_by_seeders"], up)
	}
	if d := sum["discovery"].(map[string]any); d["sent"].(float64) == 0 || d["lookups"].(float64) == 0 {
		t.Fatalf("discovery: %v", d)
	}
}

// With churn, the killed downloaders are reported and the rest finish: exit 0. Without
// --json, the summary goes to stdout for a person and the progress to stderr as plain lines.
func TestSwarmChurnAndText(t *testing.T) {
	code, events, stdout, stderr := swarmRun(t, "swarm", "--nodes", "6", "--size", "4MiB", "--churn", "0.4",
		"--download-rate", "2MiB", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	n, last := byKind(events)
	if n["killed"] != 2 || n["complete"] != 3 || last["summary"]["killed"] != float64(2) || last["summary"]["ok"] != true {
		t.Fatalf("events by kind %v; summary %v", n, last["summary"])
	}

	code, _, stdout, stderr = swarmRun(t, "swarm", "--nodes", "5", "--size", "1MiB", "--files", "3", "--seeders", "2", "--mode", "flood")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{"5 nodes by flood: 2 seeders, 3 leechers; payload, 1.0 MiB in 3 files", "ok: all 3 leechers left alive hold the content, sha256 verified"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Count(stderr, " complete in ") != 3 || strings.Contains(stderr, "\x1b[") {
		t.Errorf("stderr (not a terminal): %s", stderr)
	}
}

// A swarm that cannot finish in time exits 1, with the reason in one line and in the summary.
func TestSwarmTimeout(t *testing.T) {
	code, events, stdout, stderr := swarmRun(t, "swarm", "--nodes", "3", "--size", "8MiB", "--download-rate", "1MiB", "--timeout", "1s", "--json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	_, last := byKind(events)
	sum := last["summary"]
	if sum == nil || sum["ok"] != false || len(sum["failures"].([]any)) != 2 || !strings.Contains(sum["reason"].(string), "not complete after 1s") {
		t.Fatalf("summary: %v", sum)
	}
	if !strings.HasPrefix(stderr, "shoal: 0 of 2 leechers left alive hold the verified content; node 1 (127.0.0.3): not complete after 1s") ||
		strings.Count(stderr, "\n") != 1 {
		t.Fatalf("stderr: %q", stderr)
	}
}

// Bad flags: exit 2, one line, before anything starts.
func TestSwarmBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "1"}, "at least 2"},
		{[]string{"--nodes", "0"}, "0 nodes"},
		{[]string{"--nodes", "1001"}, "1..1000"},
		{[]string{"--nodes", "many"}, "nodes"},
		{[]string{"--mode", "gossip"}, `"gossip"`},
		{[]string{"--mode", ""}, "--mode is empty"},
		{[]string{"--seeders", "0"}, "0 seeders"},
		{[]string{"--nodes", "4", "--seeders", "4"}, "fewer than the 4 nodes"},
		{[]string{"--size", "0"}, "at least 1 byte"},
		{[]string{"--size", "lots"}, "--size"},
		{[]string{"--files", "0"}, "0 files"},
		{[]string{"--size", "3", "--files", "4"}, "a byte a file"},
		{[]string{"--churn", "1"}, "churn 1"},
		{[]string{"--churn", "-0.2"}, "churn -0.2"},
		{[]string{"--churn", "half"}, "churn"},
		{[]string{"--timeout", "-1s"}, "timeout"},
		{[]string{"--download-rate", "fast"}, "--download-rate"},
		{[]string{"--quiet", "--verbose"}, "--quiet and --verbose"},
		{[]string{"now"}, `no arguments, got "now"`},
	} {
		code, stdout, stderr := badinputRun(t, append([]string{"swarm"}, c.args...)...)
		if code != 2 {
			t.Errorf("shoal swarm %s: exit %d, want 2 (stderr %q)", strings.Join(c.args, " "), code, stderr)
		}
		if stdout != "" {
			t.Errorf("shoal swarm %s: stdout %q", strings.Join(c.args, " "), stdout)
		}
		badinputOneLine(t, stderr, c.want)
	}
}

// The live view, fed by hand: a line per node on a terminal (redrawn in place, cut to the
// width), a grid past 20 nodes, plain lines otherwise.
func TestSwarmView(t *testing.T) {
	launch := func(n int) swarm.Launch {
		l := swarm.Launch{Event: "start", Mode: "dht", Name: "payload.bin", Size: 1000, Pieces: 4, PieceLength: 256, Seeders: []int{0}, Kills: 1}
		for i := range n {
			l.Addrs = append(l.Addrs, swarm.Addr(i).String())
			if i > 0 {
				l.Leechers = append(l.Leechers, i)
			}
		}
		return l
	}
	feed := func(v *swarmView, n int) {
		v.emit(launch(n))
		v.emit(swarm.Progress{Event: "progress", Node: 1, Completed: 500, Size: 1000, Peers: 2})
		v.emit(swarm.Complete{Event: "complete", Node: 2, Addr: "127.0.0.4", Seconds: 1.5, FirstPeer: 0.25})
		v.emit(swarm.Killed{Event: "killed", Node: 3, Addr: "127.0.0.5", Completed: 300, Size: 1000})
		v.emit(swarm.Failed{Event: "failed", Node: 4, Addr: "127.0.0.6", Reason: "disk full"})
		_, _ = v.Write([]byte("level=ERROR msg=oops\n"))
		v.finish()
	}

	var b bytes.Buffer
	feed(newSwarmView(&b, true, 64), 6)
	out := b.String()
	for _, want := range []string{
		"payload.bin: 1000 B in 4 pieces of 256 B; 1 seeder, 5 leechers; 1 to be killed midway\n",
		"\x1b[7A", // back over the swarm line and 6 node lines
		"   1 127.0.0.3       [########--------]  50%",
		"   2 127.0.0.4       complete in 1.50 s (first peer 0.25 s)",
		"   3 127.0.0.5       killed holding 30%",
		"   4 127.0.0.6       failed: disk full",
		"   5 127.0.0.7       looking for peers",
		"level=ERROR msg=oops\n",
		"swarm [#######-------------]  38% of 3.9 KiB  1/4 complete, 1 ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal view lacks %q:\n%q", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimPrefix(l, "\r\x1b[K"); len([]rune(l)) >= 64 && !strings.Contains(l, "\x1b[") && !strings.HasPrefix(l, "payload.bin") {
			t.Errorf("line wider than the terminal: %q", l)
		}
	}

	b.Reset()
	feed(newSwarmView(&b, true, 100), 30)
	out = b.String()
	for _, want := range []string{"S5#x!..... .......... .........", "seeding 1  waiting 25  fetching 1  complete 1  killed 1  failed 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("grid view lacks %q:\n%s", want, out)
		}
	}

	b.Reset()
	feed(newSwarmView(&b, false, 0), 6)
	out = b.String()
	if strings.Contains(out, "\x1b[") {
		t.Errorf("escape sequences off a terminal:\n%q", out)
	}
	for _, want := range []string{
		"node 2 (127.0.0.4) complete in 1.50 s, first peer after 0.25 s\n",
		"node 3 (127.0.0.5) killed holding 30%\n",
		"node 4 (127.0.0.6) failed: disk full\n",
		"swarm [#######-------------]  38% of 3.9 KiB  1/4 complete, 1 killed, 1 failed  0.0 s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plain view lacks %q:\n%s", want, out)
		}
	}
}
