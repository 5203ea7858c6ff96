package main

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A download into a folder the user may not write to stops before it starts, with one line
// saying permission is denied. Run as the user nobody (root writes anywhere), so it needs
// root.
func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run shoal as the user nobody")
	}
	const nobody = 65534
	data, tf, _ := crashTorrent(t, 1<<20)
	seeder := startShoal(t, "seed", tf, "-d", filepath.Dir(data), "--listen", "127.0.0.2:0",
		"--data-dir", t.TempDir(), "--json")
	start := seeder.next(t, 60*time.Second, isEvent("start"))

	// Everything nobody needs is in a folder it can read: the binary, the torrent, a state
	// folder it owns; and the download folder, which it cannot write.
	base, err := os.MkdirTemp("", "shoal-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	bin, torrent := filepath.Join(base, "shoal"), filepath.Join(base, "payload.torrent")
	state, out := filepath.Join(base, "state"), filepath.Join(base, "out")
	copyFile(t, shoalBin(t), bin, 0o755)
	copyFile(t, tf, torrent, 0o644)
	for _, d := range []string{state, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(state, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	attr := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	r := runShoalAs(t, bin, attr, "get", torrent, "-o", out, "--listen", "127.0.0.3:0", "--peer", start["listen"].(string),
		"--data-dir", state, "--seed-time", "0", "--json")
	failedClearly(t, "not writable", r, "permission denied")
	if r.event("start") != nil {
		t.Error("started (hashing, dialling) before finding out it cannot write")
	}
	if names, _ := os.ReadDir(out); len(names) != 0 {
		t.Errorf("the download folder holds %d files", len(names))
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
