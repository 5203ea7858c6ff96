package main

// Interop tests: shoal against real BitTorrent clients from Debian (aria2c, transmission-cli)
// with Debian's opentracker as the meeting point, all on 127.0.0.0/8.
//
// What the clients do on loopback (see /work/shared/bench/ANCHORS.md):
//   - aria2c cannot be given a peer address; it finds peers only through a tracker, and asks
//     the tracker once at start (opentracker then says to come back in ~30 minutes), so the
//     other side must be registered with the tracker before aria2c starts as a leecher.
//   - Transmission 3.00 never dials a 127.x peer it learns from a tracker; it only accepts
//     incoming connections, so shoal must dial it (--peer).
//   - opentracker (Debian's build) serves only info-hashes on its whitelist and, run as root,
//     chroots into its directory and drops to the user nobody.
//
// A missing tool skips a test locally and fails it when $CI is set (CI installs them).

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

const (
	interopSize     = 6 << 20  // payload bytes
	interopPiece    = "256KiB" // piece length of the test torrents
	interopFileName = "payload.bin"
	interopTimeout  = 50 * time.Second // for one transfer
)

// interopBin builds the shoal binary once per test process, into a folder named after the
// process so that a later run can remove it (no TestMain here to clean up after the run).
var interopBin = sync.OnceValues(func() (string, error) {
	interopRemoveStaleBins()
	dir, err := os.MkdirTemp("", fmt.Sprintf("shoal-interop-%d-", os.Getpid()))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "shoal")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/shoalp2p/shoal/cmd/shoal")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// interopRemoveStaleBins removes the binary folders of earlier test processes that are gone.
func interopRemoveStaleBins() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "shoal-interop-*-*"))
	for _, d := range dirs {
		f := strings.SplitN(filepath.Base(d), "-", 4)
		pid, err := strconv.Atoi(f[2])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

func interopShoal(t *testing.T) string {
	t.Helper()
	bin, err := interopBin()
	if err != nil {
		t.Fatalf("building shoal: %v", err)
	}
	return bin
}

// interopNeed skips the test when a tool is missing, or fails it on CI.
func interopNeed(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed (CI must install aria2, transmission-cli and opentracker)", tool)
			}
			t.Skipf("%s is not installed (apt-get install aria2 transmission-cli opentracker)", tool)
		}
	}
}

// interopWaitFor polls cond until it is true, failing the test after timeout.
func interopWaitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// interopFreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func interopFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// interopDir is a fresh folder for one node, with a data sub-folder.
func interopDir(t *testing.T) (work, data string) {
	t.Helper()
	work = t.TempDir()
	data = filepath.Join(work, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	return work, data
}

// interopPayload writes a random file of interopSize bytes named interopFileName into dir
// and returns its sha256.
func interopPayload(t *testing.T, dir string) string {
	t.Helper()
	b := make([]byte, interopSize)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, interopFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func interopSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func interopCheckFile(t *testing.T, path, want string) {
	t.Helper()
	if got := interopSHA256(t, path); got != want {
		t.Fatalf("%s: sha256 %s, want %s (the original)", path, got, want)
	}
}

// interopTorrent runs `shoal create` for the payload in dir (with an announce URL unless it
// is empty) and returns the .torrent path and the info-hash in hex.
func interopTorrent(t *testing.T, dir, announce string) (string, string) {
	t.Helper()
	tf := filepath.Join(t.TempDir(), "payload.torrent")
	args := []string{"create", filepath.Join(dir, interopFileName), "-o", tf, "--piece-length", interopPiece, "-q"}
	if announce != "" {
		args = append(args, "--announce", announce)
	}
	if out, err := exec.Command(interopShoal(t), args...).CombinedOutput(); err != nil {
		t.Fatalf("shoal create: %v\n%s", err, out)
	}
	out, err := exec.Command(interopShoal(t), "info", "--json", tf).Output()
	if err != nil {
		t.Fatalf("shoal info: %v", err)
	}
	var info struct {
		InfoHash string `json:"infohash"`
	}
	if err := json.Unmarshal(out, &info); err != nil || len(info.InfoHash) != 40 {
		t.Fatalf("shoal info --json: %v in %s", err, out)
	}
	return tf, info.InfoHash
}

// interopProc is a child process. Its stdout and stderr go to files in its work folder; the
// test kills its whole process group when it ends and shows the logs if it failed.
type interopProc struct {
	name      string
	cmd       *exec.Cmd
	stdout    string
	stderr    string
	done      chan struct{}
	err       error // exit status, once done is closed
	extraLogs []string
}

func interopStart(t *testing.T, work, name string, argv ...string) *interopProc {
	t.Helper()
	p := &interopProc{
		name:   name,
		stdout: filepath.Join(work, name+".stdout"),
		stderr: filepath.Join(work, name+".stderr"),
		done:   make(chan struct{}),
	}
	outF, err := os.Create(p.stdout)
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = work
	p.cmd.Stdout, p.cmd.Stderr = outF, errF
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = p.cmd.Start()
	outF.Close()
	errF.Close()
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			for _, f := range append([]string{p.stdout, p.stderr}, p.extraLogs...) {
				t.Logf("--- %s: %s\n%s", name, filepath.Base(f), interopLog(f))
			}
		}
	})
	return p
}

func (p *interopProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// alive fails the test if the process has exited.
func (p *interopProc) alive(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s exited early: %v", p.name, p.err)
	}
}

// wait waits for the process to exit and fails unless it exits with status 0. It fails at
// once if one of others (the peers it needs) exits first.
func (p *interopProc) wait(t *testing.T, timeout time.Duration, others ...*interopProc) {
	t.Helper()
	interopWaitFor(t, timeout, p.name+" to finish", func() bool {
		if p.exited() {
			return true
		}
		for _, o := range others {
			o.alive(t)
		}
		return false
	})
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
}

// events returns the JSON events shoal has printed so far.
func (p *interopProc) events() []map[string]any {
	b, _ := os.ReadFile(p.stdout)
	var evs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			evs = append(evs, e)
		}
	}
	return evs
}

// event returns the first event of the given kind, or nil.
func (p *interopProc) event(kind string) map[string]any {
	for _, e := range p.events() {
		if e["event"] == kind {
			return e
		}
	}
	return nil
}

// waitEvent waits for shoal to print an event of the given kind.
func (p *interopProc) waitEvent(t *testing.T, kind string, timeout time.Duration) map[string]any {
	t.Helper()
	var e map[string]any
	interopWaitFor(t, timeout, p.name+" "+kind+" event", func() bool {
		if e = p.event(kind); e != nil {
			return true
		}
		p.alive(t)
		return false
	})
	return e
}

// logPeers logs where shoal's peers came from.
func (p *interopProc) logPeers(t *testing.T) {
	t.Helper()
	for _, e := range p.events() {
		if e["event"] == "peer" {
			t.Logf("%s: peer %v (%v)", p.name, e["addr"], e["source"])
		}
	}
}

// interopNoise matches log lines left out of a failed test's output: per-block and
// per-piece lines, and shoal's progress events.
var interopNoise = regexp.MustCompile(`"event":"progress"|readFileAt|finished hashing piece|` +
	`\] CUID#\d+ - (To|From): \S+ (request|piece|have|allowed fast|cancel)|we got new piece`)

// interopLog is a log file's head and tail, without noise.
func interopLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	// transmission-cli redraws its status line with \r
	var keep []string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\r", "\n"), "\n") {
		if strings.TrimSpace(l) != "" && !interopNoise.MatchString(l) {
			keep = append(keep, l)
		}
	}
	const head, tail = 30, 50
	if len(keep) > head+tail {
		skipped := len(keep) - head - tail
		keep = append(append(keep[:head:head], fmt.Sprintf("[... %d lines ...]", skipped)), keep[len(keep)-tail:]...)
	}
	return strings.Join(keep, "\n")
}

// interopTracker is Debian's opentracker on 127.0.0.1, serving only the given info-hashes.
type interopTracker struct {
	port     int
	announce string
}

// interopNewTracker picks the tracker's port; the torrents are made with its announce URL
// before the tracker starts, since opentracker reads its whitelist at start.
func interopNewTracker(t *testing.T) *interopTracker {
	t.Helper()
	port := interopFreePort(t)
	return &interopTracker{port: port, announce: fmt.Sprintf("http://127.0.0.1:%d/announce", port)}
}

func (tr *interopTracker) start(t *testing.T, infohashes ...string) {
	t.Helper()
	dir := t.TempDir()
	// Run as root, opentracker chroots into dir and becomes nobody: dir and the whitelist
	// (a path inside dir) must be readable by everyone.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wl := filepath.Join(dir, "whitelist.txt")
	if err := os.WriteFile(wl, []byte(strings.Join(infohashes, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// -p only: no UDP port (opentracker binds its default 6969 only when given no port).
	interopStart(t, dir, "opentracker", "opentracker", "-i", "127.0.0.1", "-p", strconv.Itoa(tr.port),
		"-d", dir, "-w", "whitelist.txt")
	interopWaitFor(t, 10*time.Second, "opentracker to answer", func() bool {
		_, _, err := tr.scrape(infohashes[0])
		return err == nil
	})
}

// scrape returns how many seeders and leechers the tracker knows for the info-hash.
func (tr *interopTracker) scrape(infohash string) (complete, incomplete int, err error) {
	raw, err := hex.DecodeString(infohash)
	if err != nil {
		return 0, 0, err
	}
	// Every byte %-escaped: url.QueryEscape turns 0x20 into "+", which opentracker takes
	// literally.
	var q strings.Builder
	for _, b := range raw {
		fmt.Fprintf(&q, "%%%02X", b)
	}
	u := fmt.Sprintf("http://127.0.0.1:%d/scrape?info_hash=%s", tr.port, q.String())
	c := http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}} // no proxy
	resp, err := c.Get(u)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, 0, err
	}
	var r struct {
		Files map[string]struct {
			Complete   int `bencode:"complete"`
			Incomplete int `bencode:"incomplete"`
		} `bencode:"files"`
		Failure string `bencode:"failure reason"`
	}
	if err := bencode.Unmarshal(body, &r); err != nil {
		return 0, 0, fmt.Errorf("scrape answer %q: %v", body, err)
	}
	if r.Failure != "" {
		return 0, 0, errors.New(r.Failure)
	}
	f := r.Files[string(raw)]
	return f.Complete, f.Incomplete, nil
}

// waitPeers waits until the tracker lists at least one peer for the info-hash.
func (tr *interopTracker) waitPeers(t *testing.T, infohash string, p *interopProc) {
	t.Helper()
	interopWaitFor(t, 20*time.Second, p.name+" to announce to the tracker", func() bool {
		c, i, err := tr.scrape(infohash)
		if err == nil && c+i > 0 {
			t.Logf("tracker lists %s: %d complete, %d incomplete", p.name, c, i)
			return true
		}
		p.alive(t)
		return false
	})
}

// interopAria2 returns aria2c's command line with DHT, LPD, PEX and IPv6 off, listening on
// 127.0.0.1:port, as in anchors.sh.
func interopAria2(work, data string, port int, extra ...string) []string {
	a := []string{"aria2c", "--no-conf=true", "--dir=" + data, "--listen-port=" + strconv.Itoa(port),
		"--interface=127.0.0.1", "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
		"--enable-peer-exchange=false", "--disable-ipv6=true", "--summary-interval=0",
		"--console-log-level=warn", "--log=" + filepath.Join(work, "aria2.log"), "--log-level=info",
		"--auto-file-renaming=false", "--allow-overwrite=true", "--stop-with-process=" + strconv.Itoa(os.Getpid())}
	return append(a, extra...)
}

// interopTransmission writes transmission's settings (DHT, LPD, PEX, uTP, port mapping and
// RPC off, bound to 127.0.0.1:port) and returns transmission-cli's command line. done, when
// not empty, is a file the finish script creates once the download is complete and checked.
func interopTransmission(t *testing.T, work, data string, port int, done string) []string {
	t.Helper()
	conf := filepath.Join(work, "config")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	settings := map[string]any{
		"bind-address-ipv4":          "127.0.0.1",
		"bind-address-ipv6":          "::1",
		"dht-enabled":                false,
		"lpd-enabled":                false,
		"pex-enabled":                false,
		"utp-enabled":                false,
		"port-forwarding-enabled":    false,
		"rpc-enabled":                false,
		"peer-port":                  port,
		"speed-limit-down-enabled":   false,
		"speed-limit-up-enabled":     false,
		"alt-speed-enabled":          false,
		"ratio-limit-enabled":        false,
		"idle-seeding-limit-enabled": false,
		"download-queue-enabled":     false,
		"seed-queue-enabled":         false,
		"message-level":              2,
	}
	b, _ := json.MarshalIndent(settings, "", "  ")
	if err := os.WriteFile(filepath.Join(conf, "settings.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	// No -v for a seeder: transmission checks the files of a torrent it has no resume
	// record for anyway, and with -v transmission-cli 3.00 sometimes sees the torrent stopped
	// for the recheck, takes that for the end and quits at once.
	a := []string{"transmission-cli", "-g", conf, "-w", data, "-p", strconv.Itoa(port), "-M", "-D", "-U"}
	if done != "" {
		script := filepath.Join(work, "done.sh")
		body := fmt.Sprintf("#!/bin/sh\ntouch '%s'\n", done)
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		a = append(a, "-f", script)
	}
	return a
}

// interopListening waits until something accepts TCP connections on addr.
func interopListening(t *testing.T, addr string, p *interopProc) {
	t.Helper()
	interopWaitFor(t, 20*time.Second, p.name+" to listen on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return true
		}
		p.alive(t)
		return false
	})
}

// interopShoalGet runs `shoal get src` into a fresh folder with flags (a --listen among
// them), waits for it to exit 0 within timeout (showing the others' logs if it does not),
// checks that it reported completion and that the file matches want, and returns the
// finished process for further checks.
func interopShoalGet(t *testing.T, what, src, want string, timeout time.Duration, flags []string, others ...*interopProc) *interopProc {
	t.Helper()
	start := time.Now()
	getWork, getData := interopDir(t)
	argv := append([]string{interopShoal(t), "get", src, "-o", getData,
		"--data-dir", filepath.Join(getWork, "state"), "--seed-time", "0", "--json", "-v"}, flags...)
	get := interopStart(t, getWork, "shoal-get", argv...)
	get.wait(t, timeout, others...)
	interopElapsed(t, what, start)
	get.logPeers(t)
	if get.event("complete") == nil {
		t.Fatal("shoal get exited 0 without a complete event")
	}
	interopCheckFile(t, filepath.Join(getData, interopFileName), want)
	return get
}

func interopElapsed(t *testing.T, what string, start time.Time) {
	t.Logf("%s in %.1fs", what, time.Since(start).Seconds())
}

// shoal seeds, aria2c downloads; they meet at opentracker, which the torrent announces to.
func TestInteropShoalToAria2(t *testing.T) {
	interopNeed(t, "aria2c", "opentracker")
	seedWork, seedData := interopDir(t)
	want := interopPayload(t, seedData)
	tr := interopNewTracker(t)
	torrent, ih := interopTorrent(t, seedData, tr.announce)
	tr.start(t, ih)

	seed := interopStart(t, seedWork, "shoal-seed", interopShoal(t), "seed", torrent, "-d", seedData,
		"--listen", "127.0.0.2:0", "--data-dir", filepath.Join(seedWork, "state"), "--json", "-v")
	seed.waitEvent(t, "complete", 20*time.Second) // verified, seeding
	tr.waitPeers(t, ih, seed)

	start := time.Now()
	getWork, getData := interopDir(t)
	get := interopStart(t, getWork, "aria2c", interopAria2(getWork, getData, interopFreePort(t), "--seed-time=0", torrent)...)
	get.extraLogs = []string{filepath.Join(getWork, "aria2.log")}
	get.wait(t, interopTimeout, seed)
	interopElapsed(t, "aria2c downloaded from shoal", start)
	interopCheckFile(t, filepath.Join(getData, interopFileName), want)
	seed.logPeers(t)
	seed.alive(t)
}

// aria2c seeds, shoal downloads: once given aria2's address and only the info-hash (so the
// metadata comes from aria2 too), once from the .torrent through the tracker alone.
func TestInteropAria2ToShoal(t *testing.T) {
	interopNeed(t, "aria2c", "opentracker")
	seedWork, seedData := interopDir(t)
	want := interopPayload(t, seedData)
	tr := interopNewTracker(t)
	torrent, ih := interopTorrent(t, seedData, tr.announce)
	tr.start(t, ih)

	ariaPort := interopFreePort(t)
	// --seed-ratio=0.0: seed forever; --check-integrity: hash the data first.
	seed := interopStart(t, seedWork, "aria2c", interopAria2(seedWork, seedData, ariaPort,
		"--check-integrity=true", "--seed-ratio=0.0", "--bt-tracker-interval=1", torrent)...)
	seed.extraLogs = []string{filepath.Join(seedWork, "aria2.log")}
	ariaAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ariaPort))
	interopListening(t, ariaAddr, seed)

	t.Run("PeerAndInfoHash", func(t *testing.T) {
		interopShoalGet(t, "shoal fetched the metadata and the data from aria2c", ih, want, interopTimeout,
			[]string{"--peer", ariaAddr, "--listen", "127.0.0.3:0"}, seed)
	})

	t.Run("Tracker", func(t *testing.T) {
		tr.waitPeers(t, ih, seed)
		interopShoalGet(t, "shoal downloaded from aria2c found through the tracker", torrent, want, interopTimeout,
			[]string{"--listen", "127.0.0.4:0"}, seed)
	})
	seed.alive(t)
}

// shoal seeds, transmission-cli downloads. Transmission does not dial loopback peers, so the
// shoal seeder dials it (--peer); the torrent has no tracker.
func TestInteropShoalToTransmission(t *testing.T) {
	interopNeed(t, "transmission-cli")
	seedWork, seedData := interopDir(t)
	want := interopPayload(t, seedData)
	torrent, _ := interopTorrent(t, seedData, "")

	getWork, getData := interopDir(t)
	trPort := interopFreePort(t)
	done := filepath.Join(getWork, "DONE")
	start := time.Now()
	get := interopStart(t, getWork, "transmission-cli",
		append(interopTransmission(t, getWork, getData, trPort, done), torrent)...)
	trAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(trPort))
	interopListening(t, trAddr, get)

	seed := interopStart(t, seedWork, "shoal-seed", interopShoal(t), "seed", torrent, "-d", seedData,
		"--listen", "127.0.0.2:0", "--data-dir", filepath.Join(seedWork, "state"), "--json", "-v",
		"--peer", trAddr)
	interopWaitFor(t, interopTimeout, "transmission's finish script", func() bool {
		if _, err := os.Stat(done); err == nil {
			return true
		}
		get.alive(t)
		seed.alive(t)
		return false
	})
	interopElapsed(t, "transmission-cli downloaded from shoal", start)
	seed.logPeers(t)
	interopCheckFile(t, filepath.Join(getData, interopFileName), want)
}

// transmission-cli seeds, shoal downloads by dialling it (--peer); the torrent has no tracker.
func TestInteropTransmissionToShoal(t *testing.T) {
	interopNeed(t, "transmission-cli")
	seedWork, seedData := interopDir(t)
	want := interopPayload(t, seedData)
	torrent, _ := interopTorrent(t, seedData, "")

	trPort := interopFreePort(t)
	seed := interopStart(t, seedWork, "transmission-cli",
		append(interopTransmission(t, seedWork, seedData, trPort, ""), torrent)...)
	trAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(trPort))
	interopListening(t, trAddr, seed)

	interopShoalGet(t, "shoal downloaded from transmission-cli", torrent, want, interopTimeout,
		[]string{"--peer", trAddr, "--listen", "127.0.0.3:0"}, seed)
	seed.alive(t)
}
