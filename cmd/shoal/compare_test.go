package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bad compare flags are usage errors: exit 2, one line naming the flag, nothing on stdout and
// no file written, before any node starts.
func TestCompareBadFlags(t *testing.T) {
	dir := t.TempDir()
	out := func(name string) string { return filepath.Join(dir, name) }
	file := filepath.Join(t.TempDir(), "file") // a file where a folder should be
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "0"}, "--nodes"},
		{[]string{"--nodes", "1"}, "--nodes"},
		{[]string{"--nodes", "100,1"}, "--nodes"},
		{[]string{"--nodes", "ten"}, "--nodes"},
		{[]string{"--nodes", ""}, "--nodes"},
		{[]string{"--modes", "dht,gossip"}, "unknown mode \"gossip\""},
		{[]string{"--modes", ""}, "--modes"},
		{[]string{"--ttl", "0"}, "--ttl"},
		{[]string{"--ttl", "3,8"}, "--ttl"},
		{[]string{"--degree", "2"}, "--degree"},
		{[]string{"--walkers", "0"}, "--walkers"},
		{[]string{"--lookups", "0"}, "--lookups"},
		{[]string{"--replication", "0"}, "--replication"},
		{[]string{"--replication", "1.5"}, "--replication"},
		{[]string{"--replication", "NaN"}, "--replication"},
		{[]string{"--latency", "20ms"}, "--latency needs --sim"},
		{[]string{"--jitter", "5ms"}, "--jitter needs --sim"},
		{[]string{"--sim", "--latency", "-1ms"}, "--latency"},
		{[]string{"--plot", out("chart.pdf")}, "--plot"},
		{[]string{"--plot", out("chart")}, ".svg or .png"},
		{[]string{"--plot", filepath.Join(dir, "missing", "chart.svg")}, "--plot"},
		{[]string{"--plot", dir}, "--plot"},
		{[]string{"--plot", filepath.Join(file, "chart.png")}, "cannot write"},
		{[]string{"--csv", filepath.Join(dir, "missing", "rows.csv")}, "--csv"},
		{[]string{"--csv", dir}, "is a folder"},
		{[]string{"--seed", "-1"}, "seed"},
		{[]string{"extra"}, "no arguments"},
		{[]string{"--quiet", "--verbose"}, "--quiet"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// Valid outputs beside the bad flag: none of them may be written either.
			args := append([]string{"compare", "--nodes", "2", "--lookups", "1", "--csv", out("rows.csv"), "--plot", out("chart.svg")}, c.args...)
			code, stdout, stderr := badinputRun(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr)
			}
			badinputOneLine(t, stderr, c.want)
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			badinputAbsentOrEmpty(t, dir)
		})
	}
}

// A small real run of every mode on loopback: stdout is exactly a JSON array of one row per
// mode and TTL, with Row's keys; the CSV and the chart are written; progress went to stderr.
func TestCompareRun(t *testing.T) {
	dir := t.TempDir()
	csvPath, plotPath := filepath.Join(dir, "rows.csv"), filepath.Join(dir, "chart.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shoalBin(t), "compare", "--nodes", "20", "--lookups", "10", "--ttl", "2,4",
		"--json", "--csv", csvPath, "--plot", plotPath)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("shoal compare: %v\n%s", err, stderr.String())
	}
	t.Logf("stderr:\n%s", stderr.String())
	var rows []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout.String())
	}
	want := []string{"dht 0", "flood 2", "flood 4", "walk 2", "walk 4"}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d: %v", len(rows), len(want), rows)
	}
	for i, r := range rows {
		if got := fmt.Sprintf("%v %v", r["mode"], r["ttl"]); got != want[i] {
			t.Errorf("row %d is %s, want %s", i, got, want[i])
		}
		for _, k := range []string{"nodes", "lookups", "success_rate", "messages_per_lookup", "messages_per_lookup_p95",
			"nodes_reached", "hops_to_first_hit", "latency_ms_p50", "latency_ms_p95", "bytes_per_lookup",
			"expected_messages", "expected_hops", "expected_success"} {
			if _, ok := r[k].(float64); !ok {
				t.Errorf("row %d: %s is %v", i, k, r[k])
			}
		}
		if r["nodes"] != 20.0 || r["lookups"] != 10.0 || r["messages_per_lookup"].(float64) <= 0 {
			t.Errorf("row %d: %v", i, r)
		}
	}
	// Twenty nodes, the content on one: flooding four hops out finds it every time.
	if s := rows[2]["success_rate"].(float64); s < 0.9 {
		t.Errorf("flood TTL 4 among 20 nodes found the content %.0f%% of the time", 100*s)
	}
	data, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil || len(recs) != len(rows)+1 || recs[0][0] != "mode" {
		t.Errorf("CSV: %v, %d records: %v", err, len(recs), recs)
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("chart: %v", err)
	}
	if !strings.Contains(stderr.String(), "chart written to "+plotPath) {
		t.Errorf("stderr does not say where the chart went")
	}
}

// Ctrl-C while a network is being built stops the run at once with status 130, after the
// table of the rows measured so far.
func TestCompareInterrupt(t *testing.T) {
	cmd := exec.Command(shoalBin(t), "compare", "--nodes", "20,1000", "--modes", "dht", "--lookups", "5")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range lines {
		}
	})
	deadline := time.After(60 * time.Second)
	var log []string
	var sent time.Time
	for signalled := false; ; {
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-exited
				var ee *exec.ExitError
				if !signalled || !errors.As(err, &ee) || ee.ExitCode() != 130 {
					t.Fatalf("shoal compare ended with %v (signalled: %v); stderr:\n%s", err, signalled, strings.Join(log, "\n"))
				}
				if !strings.Contains(log[len(log)-1], "interrupted after 1 rows") {
					t.Errorf("last line %q", log[len(log)-1])
				}
				if rows := strings.Split(strings.TrimSpace(stdout.String()), "\n"); len(rows) != 3 || !strings.HasPrefix(rows[2], "dht ") {
					t.Errorf("stdout %q, want the caption, the header and the 20-node row", stdout.String())
				}
				t.Logf("stopped %v after the signal", time.Since(sent).Round(time.Millisecond))
				return
			}
			log = append(log, l)
			// The 20-node row is done and the 1,000 nodes are being started: interrupt.
			if strings.HasPrefix(l, "dht, 20 nodes: found") {
				if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				signalled, sent = true, time.Now()
				deadline = time.After(20 * time.Second)
			}
		case <-deadline:
			t.Fatalf("no end in time (signalled: %v); stderr:\n%s", signalled, strings.Join(log, "\n"))
		}
	}
}
