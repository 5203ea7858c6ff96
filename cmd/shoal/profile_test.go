package main

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// --cpuprofile and --memprofile write pprof profiles (gzipped protobuf) when seed and get exit.
func TestProfileFlags(t *testing.T) {
	const size = 4 << 20
	dir, profs := t.TempDir(), t.TempDir()
	data := filepath.Join(dir, "clip.bin")
	randomFile(t, data, size)
	seedCPU := filepath.Join(profs, "seed.cpu")
	seeder := startShoal(t, "seed", data, "--listen", "127.0.0.2:0", "--data-dir", t.TempDir(),
		"--discovery", "none", "--json", "--cpuprofile", seedCPU)
	start := seeder.next(t, 30*time.Second, isEvent("start"))

	getCPU, getMem := filepath.Join(profs, "get.cpu"), filepath.Join(profs, "get.mem")
	leecher := startShoal(t, "get", start["magnet"].(string), "-o", t.TempDir(), "--listen", "127.0.0.3:0",
		"--peer", start["listen"].(string), "--data-dir", t.TempDir(), "--discovery", "none",
		"--seed-time", "0", "--json", "--cpuprofile", getCPU, "--memprofile", getMem)
	leecher.next(t, 60*time.Second, isEvent("complete"))
	if err := leecher.wait(t, 30*time.Second); err != nil {
		t.Fatalf("get: %v", err)
	}
	if err := seeder.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := seeder.wait(t, 30*time.Second); err != nil {
		t.Fatalf("seed after an interrupt: %v", err)
	}
	for _, p := range []string{seedCPU, getCPU, getMem} {
		checkProfile(t, p)
	}
}

// checkProfile checks that path holds a non-empty gzip stream, as pprof writes.
func checkProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("profile not written: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: not gzip: %v", filepath.Base(path), err)
	}
	n, err := io.Copy(io.Discard, z)
	if err != nil || n == 0 {
		t.Fatalf("%s: %d bytes of profile, %v", filepath.Base(path), n, err)
	}
}
