package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
