package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// shoal flood is a bootstrap point: a seeder and a downloader that know only its address
// find each other by flooding (no DHT, no tracker, no --peer), and the file is exact. On
// SIGINT the bare node stops with status 0 and says what it passed on.
func TestFloodCommand(t *testing.T) {
	boot := startShoal(t, "flood", "--listen", "127.0.0.1:0", "--json")
	addr := boot.next(t, 30*time.Second, isEvent("listening"))["addr"].(string)

	dir := t.TempDir()
	data := filepath.Join(dir, "payload.bin")
	randomFile(t, data, 3<<20)
	tf := filepath.Join(dir, "payload.torrent")
	if out, err := exec.Command(shoalBin(t), "create", data, "-o", tf).CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	seeder := startShoal(t, "seed", tf, "-d", dir, "--listen", "127.0.0.2:0", "--data-dir", t.TempDir(),
		"--discovery", "flood", "--flood-peers", addr, "--json")
	magnet, _ := seeder.next(t, 30*time.Second, isEvent("start"))["magnet"].(string)
	if !strings.HasPrefix(magnet, "magnet:") {
		t.Fatalf("seed's start event has no magnet: %q", magnet)
	}
	out := t.TempDir()
	get := startShoal(t, "get", magnet, "-o", out, "--listen", "127.0.0.3:0", "--data-dir", t.TempDir(),
		"--discovery", "flood", "--flood-peers", addr, "--flood-ttl", "3", "--seed-time", "0", "--json")
	p := get.next(t, 60*time.Second, isEvent("peer"))
	if p["source"] != "flood" {
		t.Errorf("first peer event %v, want source flood", p)
	}
	done := get.next(t, 60*time.Second, isEvent("complete"))
	if err := get.wait(t, 30*time.Second); err != nil {
		t.Fatalf("get: %v", err)
	}
	if sha(t, filepath.Join(out, "payload.bin")) != sha(t, data) {
		t.Fatal("downloaded file differs from the original")
	}
	t.Logf("complete: %v", done)
	if d, _ := done["discovery"].(map[string]any); d == nil || d["flood"] == nil {
		t.Errorf("the complete event carries no flood cost: %v", done)
	}

	if err := boot.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if stop := boot.next(t, 10*time.Second, isEvent("stop")); stop["dropped"] == nil {
		t.Errorf("the stop event says nothing of what was dropped: %v", stop)
	}
	if err := boot.wait(t, 10*time.Second); err != nil {
		t.Fatalf("shoal flood after SIGINT: %v", err)
	}
}

// Bad flood flags are usage errors: exit 2 with one line.
func TestFloodBadFlags(t *testing.T) {
	tf, _ := flagsTorrent(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"flood", "--listen", "nowhere"}, "--listen"},
		{[]string{"flood", "--listen", "127.0.0.1:0", "extra"}, "no arguments"},
		{[]string{"flood", "--listen", "127.0.0.1:0", "--flood-peers", "localhost:1"}, "--flood-peers"},
		{[]string{"flood", "--listen", "127.0.0.1:0", "--flood-degree", "0"}, "--flood-degree"},
		{[]string{"get", tf, "--discovery", "flood", "--flood-ttl", "8"}, "--flood-ttl"},
		{[]string{"get", tf, "--discovery", "flood", "--flood-walkers", "-1"}, "--flood-walkers"},
		{[]string{"get", tf, "--discovery", "flood", "--flood-peers", "127.0.0.1"}, "--flood-peers"},
		{[]string{"get", tf, "--discovery", "flood", "--flood-listen", "x"}, "--flood-listen"},
		{[]string{"get", tf, "--discovery", "dht", "--flood-peers", "127.0.0.1:1"}, "--flood-peers needs --discovery"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := c.args
			if args[0] == "get" {
				tmp := t.TempDir()
				args = append(args, "-o", filepath.Join(tmp, "out"), "--data-dir", filepath.Join(tmp, "state"), "--listen", "127.0.0.1:0")
			}
			code, _, stderr := badinputRun(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr)
			}
			badinputOneLine(t, stderr, c.want)
		})
	}
}
