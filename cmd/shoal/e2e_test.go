package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// shoalBin returns the shoal binary built once for this test process (interopBin).
func shoalBin(t testing.TB) string {
	t.Helper()
	bin, err := interopBin()
	if err != nil {
		t.Fatalf("building shoal: %v", err)
	}
	return bin
}

// proc is a shoal child process whose JSON events the test reads line by line.
type proc struct {
	cmd    *exec.Cmd
	events chan map[string]any
	exited chan error
}

// startShoal runs shoal with args (which should include --json) and kills it when the test ends.
func startShoal(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(shoalBin(t), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &testWriter{t: t, prefix: filepath.Base(args[0]) + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, events: make(chan map[string]any, 1<<12), exited: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e map[string]any
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				p.events <- e
			}
		}
		close(p.events)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for range p.events {
		}
		<-p.exited
	})
	return p
}

// next returns the next event for which match is true, failing after the deadline or if the
// process ends first.
func (p *proc) next(t *testing.T, d time.Duration, match func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				t.Fatalf("shoal exited before the awaited event")
			}
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no awaited event after %v", d)
		}
	}
}

func isEvent(name string) func(map[string]any) bool {
	return func(e map[string]any) bool { return e["event"] == name }
}

// wait returns the exit error once the process is gone, failing after the deadline.
func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case _, ok := <-p.events:
			if ok {
				continue
			}
			err := <-p.exited
			p.exited <- err
			return err
		case <-deadline:
			t.Fatalf("shoal still running after %v", d)
		}
	}
}

type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.t.Log(w.prefix + string(b))
	return len(b), nil
}

func randomFile(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return string(h.Sum(nil))
}

// The first Ctrl-C stops a download cleanly (exit 130, one line on stderr); started again, it
// keeps what it had.
func TestInterruptThenResume(t *testing.T) {
	const size = 24 << 20
	dir := t.TempDir()
	data := filepath.Join(dir, "clip.bin")
	randomFile(t, data, size)
	seeder := startShoal(t, "seed", data, "--listen", "127.0.0.2:0", "--data-dir", t.TempDir(), "--json")
	start := seeder.next(t, 30*time.Second, isEvent("start"))
	addr, magnet := start["listen"].(string), start["magnet"].(string)

	out, state := t.TempDir(), t.TempDir()
	getArgs := []string{"get", magnet, "-o", out, "--listen", "127.0.0.3:0", "--peer", addr,
		"--data-dir", state, "--seed-time", "0", "--json"}
	first := startShoal(t, append(getArgs, "--download-rate", "4MiB")...)
	first.next(t, 60*time.Second, func(e map[string]any) bool {
		c, _ := e["completed"].(float64)
		return e["event"] == "progress" && c >= size/3
	})
	if err := first.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := first.wait(t, 20*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted get: %v, want exit status 130", err)
	}

	second := startShoal(t, getArgs...)
	done := second.next(t, 60*time.Second, isEvent("complete"))
	if err := second.wait(t, 30*time.Second); err != nil {
		t.Fatalf("second get: %v", err)
	}
	if sha(t, filepath.Join(out, "clip.bin")) != sha(t, data) {
		t.Fatal("downloaded file differs from the original")
	}
	if got := int64(done["downloaded"].(float64)); got >= size-size/4 {
		t.Fatalf("second run read %d of %d bytes: the first run's pieces were lost", got, size)
	}
}

// --on-complete POSTs the complete event; a webhook that fails does not fail the download.
func TestOnCompleteWebhook(t *testing.T) {
	posted := make(chan map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e map[string]any
		if r.Method == http.MethodPost && json.NewDecoder(r.Body).Decode(&e) == nil {
			posted <- e
		}
	}))
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	dir := t.TempDir()
	data := filepath.Join(dir, "note.bin")
	randomFile(t, data, 1<<20)
	seeder := startShoal(t, "seed", data, "--listen", "127.0.0.2:0", "--data-dir", t.TempDir(), "--json")
	start := seeder.next(t, 30*time.Second, isEvent("start"))

	for i, hook := range []string{srv.URL, dead.URL} {
		leech := startShoal(t, "get", start["magnet"].(string), "-o", t.TempDir(), "--listen", fmt.Sprintf("127.0.0.%d:0", 3+i),
			"--peer", start["listen"].(string), "--data-dir", t.TempDir(), "--seed-time", "0", "--json", "--on-complete", hook)
		if err := leech.wait(t, 60*time.Second); err != nil {
			t.Fatalf("get with webhook %s: %v", hook, err)
		}
	}
	select {
	case e := <-posted:
		if e["event"] != "complete" || e["infohash"] != start["infohash"] || e["size"].(float64) != 1<<20 {
			t.Fatalf("webhook got %v", e)
		}
	default:
		t.Fatal("webhook was not called")
	}
}
