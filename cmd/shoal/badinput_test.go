package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badinputFixtures is the repository's testdata folder of .torrent files, written by
// SHOAL_WRITE_FIXTURES=1 go test ./peer/meta -run Fixtures.
const badinputFixtures = "../../testdata"

// badinputGood are the fixtures that must load; every other .torrent there is malformed.
var badinputGood = map[string]bool{"good.torrent": true, "good-single.torrent": true, "hybrid.torrent": true,
	"piece-length-not-power-of-two.torrent": true, "escapes.torrent": true}

// badinputRun runs shoal in process as main does, with a context that is already cancelled:
// a command that wrongly gets as far as starting a node stops at once instead of hanging.
func badinputRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errw bytes.Buffer
	err := newApp(&out, &errw).Run(ctx, append([]string{"shoal"}, args...))
	code = exitCode(err, &errw)
	return code, out.String(), errw.String()
}

// badinputOneLine fails unless stderr is exactly one line from shoal, with no trace of a panic,
// mentioning each of want.
func badinputOneLine(t *testing.T, stderr string, want ...string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.HasPrefix(stderr, "shoal: ") {
		t.Errorf("stderr is not one shoal: line: %q", stderr)
	}
	for _, bad := range []string{"panic", "goroutine", "runtime error", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr shows %q: %q", bad, stderr)
		}
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q does not mention %q", stderr, w)
		}
	}
}

// badinputFiles lists the malformed fixtures.
func badinputFiles(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(badinputFixtures, "*.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	var bad []string
	for _, p := range all {
		if !badinputGood[filepath.Base(p)] {
			bad = append(bad, p)
		}
	}
	if len(bad) < 15 {
		t.Fatalf("only %d malformed fixtures in %s", len(bad), badinputFixtures)
	}
	return append(bad, filepath.Join(badinputFixtures, "missing.torrent"))
}

// badinputAbsentOrEmpty fails if dir holds anything.
func badinputAbsentOrEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s was created in %s", e.Name(), dir)
	}
}

func TestBadInputInfo(t *testing.T) {
	for _, p := range badinputFiles(t) {
		t.Run(filepath.Base(p), func(t *testing.T) {
			for _, args := range [][]string{{"info", p}, {"info", "--json", p}} {
				code, stdout, stderr := badinputRun(t, args...)
				if code != 1 {
					t.Errorf("shoal %s: exit %d, want 1", strings.Join(args, " "), code)
				}
				if stdout != "" {
					t.Errorf("stdout: %q", stdout)
				}
				badinputOneLine(t, stderr, p)
			}
		})
	}
}

func TestBadInputGet(t *testing.T) {
	for _, p := range badinputFiles(t) {
		t.Run(filepath.Base(p), func(t *testing.T) {
			tmp := t.TempDir()
			out, state := filepath.Join(tmp, "out"), filepath.Join(tmp, "state")
			code, stdout, stderr := badinputRun(t, "get", p, "-o", out, "--data-dir", state, "--listen", "127.0.0.1:0")
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			badinputOneLine(t, stderr, p)
			badinputAbsentOrEmpty(t, out)
			badinputAbsentOrEmpty(t, state)
			badinputAbsentOrEmpty(t, tmp)

			// Same with the output folder already there.
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			code, _, stderr = badinputRun(t, "get", "--json", "-o", out, "--data-dir", state, "--listen", "127.0.0.1:0", p)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			badinputOneLine(t, stderr, p)
			badinputAbsentOrEmpty(t, out)
			badinputAbsentOrEmpty(t, state)
		})
	}
}

func TestBadInputSeed(t *testing.T) {
	for _, p := range badinputFiles(t) {
		if !strings.HasSuffix(p, "missing.torrent") {
			t.Run(filepath.Base(p), func(t *testing.T) {
				tmp := t.TempDir()
				state := filepath.Join(tmp, "state")
				code, _, stderr := badinputRun(t, "seed", p, "--dir", tmp, "--data-dir", state, "--listen", "127.0.0.1:0")
				if code != 1 {
					t.Errorf("exit %d, want 1", code)
				}
				badinputOneLine(t, stderr, p)
				badinputAbsentOrEmpty(t, tmp)
			})
		}
	}
}

func TestGoodFixturesInfo(t *testing.T) {
	for name := range badinputGood {
		p := filepath.Join(badinputFixtures, name)
		code, stdout, stderr := badinputRun(t, "info", p)
		if code != 0 || stderr != "" {
			t.Errorf("shoal info %s: exit %d, stderr %q", name, code, stderr)
		}
		if !strings.Contains(stdout, "magnet:    magnet:?xt=urn:btih:") {
			t.Errorf("shoal info %s printed %q", name, stdout)
		}
	}
}
