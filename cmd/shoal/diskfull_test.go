package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// mountTmpfs mounts a tmpfs of the given size (mount's -o size=) on a new folder, and
// unmounts it when the test ends. It skips the test where mounting is not possible (not
// Linux, not root).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root on Linux): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func remount(t *testing.T, dir, opts string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v: %s", dir, opts, err, out)
	}
}

// result is a finished shoal run: its JSON events, its stderr and its exit status.
type result struct {
	events []map[string]any
	stderr string
	code   int
}

func (r result) event(name string) map[string]any {
	for _, e := range r.events {
		if e["event"] == name {
			return e
		}
	}
	return nil
}

// runShoal runs shoal to its end (at most two minutes) and collects what it said.
func runShoal(t *testing.T, args ...string) result {
	t.Helper()
	return runShoalAs(t, shoalBin(t), nil, args...)
}

// runShoalAs is runShoal with the binary at bin, run with attr (nil: as this process).
func runShoalAs(t *testing.T, bin string, attr *syscall.SysProcAttr, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = attr
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var r result
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.code = ee.ExitCode()
	default:
		t.Fatalf("shoal %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			r.events = append(r.events, e)
		}
	}
	r.stderr = stderr.String()
	return r
}

// failedClearly checks that a run failed with exit status 1, one line on stderr naming the
// cause (want), the same message in an error event, and no complete event.
func failedClearly(t *testing.T, what string, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	t.Logf("%s: exit %d, stderr: %s", what, r.code, r.stderr)
	if r.code != 1 {
		t.Errorf("%s: exit status %d, want 1", what, r.code)
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "shoal: ") || !strings.Contains(lines[0], want) {
		t.Errorf("%s: stderr %q, want one line naming %q", what, r.stderr, want)
	}
	if e := r.event("error"); e == nil || !strings.Contains(e["message"].(string), want) {
		t.Errorf("%s: error event %v, want one naming %q", what, e, want)
	}
	if r.event("complete") != nil {
		t.Errorf("%s: reported complete", what)
	}
}

// A download into a folder that fills up stops with a clear error and keeps the pieces it
// verified; started again on the full disk, it does so again; started in the folder made
// read-only, it says so before it starts and changes nothing; with space again it fetches
// only what is missing, and the file is exact.
func TestDiskFull(t *testing.T) {
	const size = 8 << 20
	out := mountTmpfs(t, "4m")
	data, tf, info := crashTorrent(t, size)
	seeder := startShoal(t, "seed", tf, "-d", filepath.Dir(data), "--listen", "127.0.0.2:0",
		"--data-dir", t.TempDir(), "--json")
	start := seeder.next(t, 60*time.Second, isEvent("start"))
	ih := metainfo.NewHashFromHex(start["infohash"].(string))
	state := t.TempDir()
	record := filepath.Join(state, "resume", ih.HexString())
	part, final := filepath.Join(out, "payload.bin.part"), filepath.Join(out, "payload.bin")
	args := []string{"get", tf, "-o", out, "--listen", "127.0.0.3:0", "--peer", start["listen"].(string),
		"--data-dir", state, "--seed-time", "0", "--json"}

	// The disk fills up.
	full := runShoal(t, args...)
	failedClearly(t, "disk full", full, "disk full writing "+final)
	if _, err := os.Stat(final); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after the disk filled up (%v): a partial file under the final name", final, err)
	}
	valid := validPieces(t, part, info)
	rec := recordedPieces(t, record, ih, info.NumPieces())
	t.Logf("disk full: %d of %d pieces whole in the part file, %d in the resume record", len(valid), info.NumPieces(), len(rec))
	if len(rec) == 0 {
		t.Error("the resume record holds no piece after the disk filled up: verified pieces were not kept")
	}
	for _, i := range rec {
		if !valid[i] {
			t.Errorf("the resume record holds piece %d as complete, but its bytes on disk do not match", i)
		}
	}
	// What the message says is kept is on the disk (a verified piece whose write failed is not).
	if m := regexp.MustCompile(`the ([0-9.]+) MiB of`).FindStringSubmatch(full.stderr); m == nil {
		t.Errorf("no kept size in %q", full.stderr)
	} else if kept, _ := strconv.ParseFloat(m[1], 64); kept*(1<<20) > float64(int64(len(valid))*info.PieceLength)+0.05*(1<<20) {
		t.Errorf("the message says %s MiB is kept, but only %d pieces (%.1f MiB) are whole on the disk",
			m[1], len(valid), float64(int64(len(valid))*info.PieceLength)/(1<<20))
	}

	// Run again with the disk still full: the part file is hashed (its holes read back as
	// zeros, not a crash), and it stops as clearly, keeping what it had.
	failedClearly(t, "still full", runShoal(t, args...), "disk full writing "+final)
	for i := range valid {
		if !validPieces(t, part, info)[i] {
			t.Errorf("piece %d was lost by the second run on a full disk", i)
		}
	}

	// Read-only: it stops before it starts, and nothing changes.
	before := sha(t, part)
	remount(t, out, "ro")
	ro := runShoal(t, args...)
	failedClearly(t, "read-only", ro, "read-only")
	if ro.event("start") != nil {
		t.Error("read-only: started (hashing, dialling) before finding out it cannot write")
	}
	remount(t, out, "rw,size=32m")
	if sha(t, part) != before {
		t.Error("the part file changed in the read-only run")
	}

	// Space again: only the rest is fetched.
	r := runShoal(t, args...)
	t.Logf("with space: %v", r.events[len(r.events)-1])
	done := r.event("complete")
	if r.code != 0 || done == nil {
		t.Fatalf("get with space: exit %d, complete event %v, stderr %s", r.code, done, r.stderr)
	}
	if sha(t, final) != sha(t, data) {
		t.Fatal("downloaded file differs from the original")
	}
	missing, got := size-pieceBytes(info, valid), num(done, "downloaded")
	t.Logf("with space: read %d bytes, %d were missing", got, missing)
	if got > missing+4*crashPiece || got < missing {
		t.Errorf("with space: read %d bytes from peers, but %d were missing: the pieces kept were fetched again", got, missing)
	}
}

// When every piece is verified but the part file cannot be renamed to the file's name
// (here a folder of that name is in the way), shoal does not report the download complete.
func TestNotCompleteUntilRenamed(t *testing.T) {
	const size = 8 << 20
	data, tf, info := crashTorrent(t, size)
	seeder := startShoal(t, "seed", tf, "-d", filepath.Dir(data), "--listen", "127.0.0.2:0",
		"--data-dir", t.TempDir(), "--json", "--upload-rate", "2MiB")
	start := seeder.next(t, 60*time.Second, isEvent("start"))
	out := t.TempDir()
	p := startShoal(t, "get", tf, "-o", out, "--listen", "127.0.0.3:0", "--peer", start["listen"].(string),
		"--data-dir", t.TempDir(), "--seed-time", "0", "--json")
	// Once some pieces are in (before that, the library moves whatever has the file's name
	// to NAME.part), a folder takes the name.
	p.next(t, 60*time.Second, func(e map[string]any) bool { return e["event"] == "progress" && num(e, "completed") >= size/4 })
	final := filepath.Join(out, "payload.bin")
	if err := os.Mkdir(final, 0o755); err != nil {
		t.Fatal(err)
	}
	e := p.next(t, 60*time.Second, func(e map[string]any) bool { return e["event"] == "complete" || e["event"] == "error" })
	if e["event"] != "error" || !strings.Contains(e["message"].(string), "could not be renamed") {
		t.Fatalf("got %v, want an error saying the part file could not be renamed", e)
	}
	var ee *exec.ExitError
	if err := p.wait(t, 30*time.Second); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	if v := validPieces(t, final+".part", info); len(v) != info.NumPieces() {
		t.Errorf("the part file holds %d of %d pieces: the verified data was not kept", len(v), info.NumPieces())
	}
}
