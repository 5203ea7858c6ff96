package main

// Interop through shoal's own tracker: `shoal tracker` runs as a child process on 127.0.0.1
// and aria2c and shoal meet there, each way round. aria2c asks a tracker for peers once at
// start, so the seeder is always started first, and the test waits until the tracker's
// /stats lists it as a seeder before the leecher starts.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/tracker"
)

// shoalTracker is `shoal tracker` as a child process on 127.0.0.1, on a port it chose.
type shoalTracker struct {
	proc     *interopProc
	announce string // http://127.0.0.1:PORT/announce
	base     string // http://127.0.0.1:PORT
}

func startShoalTracker(t *testing.T, extra ...string) *shoalTracker {
	t.Helper()
	argv := append([]string{interopShoal(t), "tracker", "--listen", "127.0.0.1:0", "--json", "-v"}, extra...)
	p := interopStart(t, t.TempDir(), "shoal-tracker", argv...)
	ann, _ := p.waitEvent(t, "start", 20*time.Second)["announce"].(string)
	if !strings.HasPrefix(ann, "http://127.0.0.1:") || !strings.HasSuffix(ann, "/announce") {
		t.Fatalf("shoal tracker printed announce URL %q", ann)
	}
	return &shoalTracker{proc: p, announce: ann, base: strings.TrimSuffix(ann, "/announce")}
}

// stats reads the tracker's /stats.
func (tr *shoalTracker) stats() (tracker.Stats, error) {
	var st tracker.Stats
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}} // no proxy
	resp, err := c.Get(tr.base + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// torrent returns the tracker's counts for the info-hash (hex), if it tracks it.
func (tr *shoalTracker) torrent(ih string) (tracker.TorrentStats, bool, error) {
	st, err := tr.stats()
	if err != nil {
		return tracker.TorrentStats{}, false, err
	}
	for _, ts := range st.PerTorrent {
		if ts.InfoHash == ih {
			return ts, true, nil
		}
	}
	return tracker.TorrentStats{}, false, nil
}

// waitSeeder waits until /stats lists a seeder of the info-hash, that p announced.
func (tr *shoalTracker) waitSeeder(t *testing.T, ih string, p *interopProc) {
	t.Helper()
	interopWaitFor(t, 30*time.Second, p.name+" to announce itself as a seeder to shoal's tracker", func() bool {
		ts, ok, err := tr.torrent(ih)
		if err == nil && ok && ts.Seeders > 0 {
			t.Logf("shoal tracker lists %s: %d seeders, %d leechers", p.name, ts.Seeders, ts.Leechers)
			return true
		}
		p.alive(t)
		tr.proc.alive(t)
		return false
	})
}

// checkServed fails unless the tracker answered the announces of both sides (seeder and
// leecher) and refused none.
func (tr *shoalTracker) checkServed(t *testing.T) {
	t.Helper()
	st, err := tr.stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("shoal tracker: %d announces, %d scrapes, %d refused", st.Announces, st.Scrapes, st.Failures)
	if st.Announces < 2 || st.Failures != 0 {
		t.Errorf("tracker served %d announces and refused %d; want the seeder's and the leecher's, none refused",
			st.Announces, st.Failures)
	}
}

// peerSources returns the sources of shoal's peer events.
func peerSources(p *interopProc) []string {
	var out []string
	for _, e := range p.events() {
		if e["event"] == "peer" {
			out = append(out, fmt.Sprint(e["source"]))
		}
	}
	return out
}

// aria2c seeds and announces to shoal's tracker; shoal gets the .torrent with no --peer and
// finds aria2c through the tracker alone; then another shoal gets it from a magnet link that
// names the tracker (tr=) and nothing else, so even the metadata comes from aria2c.
func TestTrackerInteropAria2ToShoal(t *testing.T) {
	interopNeed(t, "aria2c")
	tr := startShoalTracker(t)
	seedWork, seedData := interopDir(t)
	want := interopPayload(t, seedData)
	torrent, ih := interopTorrent(t, seedData, tr.announce)

	// --seed-ratio=0.0: seed forever; --check-integrity: hash the data first.
	seed := interopStart(t, seedWork, "aria2c", interopAria2(seedWork, seedData, interopFreePort(t),
		"--check-integrity=true", "--seed-ratio=0.0", "--bt-tracker-interval=1", torrent)...)
	seed.extraLogs = []string{filepath.Join(seedWork, "aria2.log")}
	tr.waitSeeder(t, ih, seed)

	get := interopShoalGet(t, "shoal downloaded from aria2c found through shoal's tracker", torrent, want, interopTimeout,
		[]string{"--listen", "127.0.0.3:0", "--discovery", "none"}, seed, tr.proc)
	if src := peerSources(get); len(src) == 0 || !strings.Contains(strings.Join(src, ","), "tracker") {
		t.Errorf("shoal's peers came from %v, want the tracker", src)
	}
	magnet := "magnet:?xt=urn:btih:" + ih + "&tr=" + url.QueryEscape(tr.announce)
	get = interopShoalGet(t, "shoal downloaded a magnet link from aria2c found through shoal's tracker", magnet, want, interopTimeout,
		[]string{"--listen", "127.0.0.4:0", "--discovery", "none"}, seed, tr.proc)
	if src := peerSources(get); len(src) == 0 || !strings.Contains(strings.Join(src, ","), "tracker") {
		t.Errorf("the magnet's peers came from %v, want the tracker", src)
	}
	tr.checkServed(t)
	seed.alive(t)
	tr.proc.alive(t)
}

// shoal seeds and announces to shoal's tracker; aria2c finds it there and downloads.
func TestTrackerInteropShoalToAria2(t *testing.T) {
	interopNeed(t, "aria2c")
	tr := startShoalTracker(t)
	seedWork, seedData := interopDir(t)
	want := interopPayload(t, seedData)
	torrent, ih := interopTorrent(t, seedData, tr.announce)

	seed := interopStart(t, seedWork, "shoal-seed", interopShoal(t), "seed", torrent, "-d", seedData,
		"--listen", "127.0.0.2:0", "--data-dir", filepath.Join(seedWork, "state"), "--discovery", "none",
		"--json", "-v")
	seed.waitEvent(t, "complete", 20*time.Second) // verified, seeding
	tr.waitSeeder(t, ih, seed)

	start := time.Now()
	getWork, getData := interopDir(t)
	get := interopStart(t, getWork, "aria2c", interopAria2(getWork, getData, interopFreePort(t), "--seed-time=0", torrent)...)
	get.extraLogs = []string{filepath.Join(getWork, "aria2.log")}
	get.wait(t, interopTimeout, seed, tr.proc)
	interopElapsed(t, "aria2c downloaded from shoal found through shoal's tracker", start)
	interopCheckFile(t, filepath.Join(getData, interopFileName), want)
	seed.logPeers(t)
	tr.checkServed(t)
	seed.alive(t)
	tr.proc.alive(t)
}

// shoal tracker as a program: the announce URL on stdout, pages over HTTP, a bencoded failure
// for a bad announce, and on SIGINT a graceful stop with status 0.
func TestTrackerCommand(t *testing.T) {
	tr := startShoalTracker(t, "--interval", "90s")
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for path, want := range map[string]string{
		"/":                    "shoal tracker",
		"/stats":               `"interval_seconds": 90`,
		"/announce?port=6881":  "d14:failure reason",
		"/scrape?info_hash=xy": "d14:failure reason",
	} {
		resp, err := c.Get(tr.base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %q (%v), want 200 with %q", path, resp.StatusCode, b, err, want)
		}
	}
	if err := tr.proc.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	tr.proc.wait(t, 10*time.Second)
	stop := tr.proc.event("stop")
	if stop == nil || stop["failures"] != float64(2) {
		t.Fatalf("stop event %v, want one with 2 failures", stop)
	}
	// The port is free again.
	l, err := net.Listen("tcp", strings.TrimPrefix(tr.base, "http://"))
	if err != nil {
		t.Fatalf("after the tracker stopped: %v", err)
	}
	l.Close()
}

// Bad tracker flags are usage errors (exit 2) or, for the allow file, failures (exit 1),
// each one line on stderr.
func TestTrackerBadFlags(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	bad := filepath.Join(dir, "bad.txt")
	good := filepath.Join(dir, "good.txt")
	trackerWriteFile(t, empty, "# nothing yet\n")
	trackerWriteFile(t, bad, strings.Repeat("ab", 20)+"\nnot-a-hash\n")
	trackerWriteFile(t, good, strings.Repeat("ab", 20)+"\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--interval", "10ms"}, 2, "--interval"},
		{[]string{"--interval", "soon"}, 2, "interval"},
		{[]string{"--listen", "nowhere"}, 2, "--listen"},
		{[]string{"--listen", "127.0.0.1:99999"}, 2, "--listen"},
		{[]string{"extra"}, 2, "no arguments"},
		{[]string{"-q", "-v"}, 2, "--quiet"},
		{[]string{"--allow", filepath.Join(dir, "missing.txt")}, 1, "missing.txt"},
		{[]string{"--allow", empty}, 1, "no info-hashes"},
		{[]string{"--allow", bad}, 1, "line 2"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := badinputRun(t, append([]string{"tracker", "--listen", "127.0.0.1:0"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, stderr)
			}
			badinputOneLine(t, stderr, c.want)
		})
	}
	// A good allow file, the context already cancelled: the tracker starts and stops at once.
	code, stdout, stderr := badinputRun(t, "tracker", "--listen", "127.0.0.1:0", "--allow", good)
	if code != 0 || !strings.HasPrefix(stdout, "http://127.0.0.1:") || !strings.Contains(stderr, "private: 1 torrents allowed") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// A port in use.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, _, stderr = badinputRun(t, "tracker", "--listen", l.Addr().String())
	if code != 1 {
		t.Errorf("port in use: exit %d", code)
	}
	badinputOneLine(t, stderr, "already in use", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

func trackerWriteFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
