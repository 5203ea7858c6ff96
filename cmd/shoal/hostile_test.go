package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer/badpeer"
)

// hostileBuffer collects a child's stderr while the test reads it.
type hostileBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *hostileBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *hostileBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runShoalLogged runs shoal to the end (failing after d) and returns its stdout lines and stderr.
func runShoalLogged(t *testing.T, d time.Duration, args ...string) (stdout []string, stderr string) {
	t.Helper()
	cmd := exec.Command(shoalBin(t), args...)
	var out, errOut hostileBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Logf("stderr:\n%s", errOut.String())
			t.Fatalf("shoal %s: %v", args[0], err)
		}
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
		t.Logf("stderr:\n%s", errOut.String())
		t.Fatalf("shoal %s still running after %v", args[0], d)
	}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		stdout = append(stdout, sc.Text())
	}
	return stdout, errOut.String()
}

// A peer that answers every request with wrong bytes, beside an honest seeder: shoal get
// bans it and says so in its JSON events, in the --verbose log and in the human view, and the
// file comes out exact.
func TestGetBansCorruptPeer(t *testing.T) {
	const size = 4 << 20
	dir := t.TempDir()
	data := filepath.Join(dir, "clip.bin")
	randomFile(t, data, size)
	seeder := startShoal(t, "seed", data, "--listen", "127.0.0.41:0", "--data-dir", t.TempDir(),
		"--upload-rate", "1MiB", "--json")
	start := seeder.next(t, 30*time.Second, isEvent("start"))
	seedAddr, magnet := start["listen"].(string), start["magnet"].(string)
	ih := metainfo.NewHashFromHex(start["infohash"].(string))
	bad, err := badpeer.Start("127.0.0.42", ih, int(start["pieces"].(float64)), badpeer.Corrupt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Close() })
	badAddr := bad.Addr().String()
	badIP := bad.Addr().Addr().String()

	get := func(listen string, extra ...string) (events []map[string]any, stderr, out string) {
		out = t.TempDir()
		args := append([]string{"get", magnet, "-o", out, "--listen", listen, "--data-dir", t.TempDir(),
			"--peer", badAddr, "--peer", seedAddr, "--seed-time", "0"}, extra...)
		lines, stderr := runShoalLogged(t, 90*time.Second, args...)
		for _, l := range lines {
			var e map[string]any
			if json.Unmarshal([]byte(l), &e) == nil {
				events = append(events, e)
			}
		}
		if sha(t, filepath.Join(out, "clip.bin")) != sha(t, data) {
			t.Fatal("downloaded file differs from the original")
		}
		return events, stderr, out
	}

	// --json --verbose: a ban event and piece_failed events on stdout, the ban in the log.
	served := bad.Served()
	events, stderr, _ := get("127.0.0.43:0", "--json", "--verbose")
	if bad.Served() == served {
		t.Fatal("the bad peer was never asked for a block: the test proves nothing")
	}
	var bans, failed int
	var complete map[string]any
	for _, e := range events {
		switch e["event"] {
		case "ban":
			bans++
			if e["ip"] != badIP || e["reason"] != "bad-data" {
				t.Errorf("ban event %v, want ip %s reason bad-data", e, badIP)
			}
			if ps, _ := e["pieces"].([]any); len(ps) == 0 {
				t.Errorf("ban event %v lists no pieces", e)
			}
		case "piece_failed":
			failed++
		case "complete":
			complete = e
		}
	}
	if bans != 1 || failed == 0 {
		t.Fatalf("%d ban events and %d piece_failed events, want 1 and at least 1", bans, failed)
	}
	if complete == nil || complete["peers_banned"] != 1.0 || complete["pieces_failed"].(float64) < 1 {
		t.Fatalf("complete event %v, want peers_banned 1 and pieces_failed >= 1", complete)
	}
	logLine := `msg="banned peer: it sent data that failed the hash check" ip=` + badIP
	if !strings.Contains(stderr, logLine) {
		t.Fatalf("--verbose log has no %q; stderr:\n%s", logLine, stderr)
	}

	// Without --json and --verbose: one line for a person.
	_, stderr, _ = get("127.0.0.44:0")
	human := "banned " + badIP + ": it sent data that failed the hash check (pieces "
	if n := strings.Count(stderr, human); n != 1 {
		t.Fatalf("stderr shows %q %d times, want once; stderr:\n%s", human, n, stderr)
	}
	if strings.Contains(stderr, "level=INFO") {
		t.Fatalf("info log lines without --verbose; stderr:\n%s", stderr)
	}
	t.Logf("human view:\n%s", stderr)
}
