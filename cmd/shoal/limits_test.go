package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/storage"
)

// TestBadInputLimits runs the .torrent files over shoal's limits, too large to commit as
// fixtures, through info, get and seed: each is refused in one line and nothing is written.
func TestBadInputLimits(t *testing.T) {
	dir := t.TempDir()
	var files bytes.Buffer
	files.WriteString("d4:infod5:filesl")
	for i := range storage.MaxFiles + 1 {
		s := fmt.Sprint(i)
		fmt.Fprintf(&files, "d6:lengthi1e4:pathl%d:%see", len(s), s)
	}
	files.WriteString("e4:name4:many12:piece lengthi16384e6:pieces640:" + strings.Repeat("h", 640) + "ee")
	const n = meta.MaxPieces + 1
	pieces := fmt.Appendf(nil, "d4:infod6:lengthi%de4:name4:huge12:piece lengthi16384e6:pieces%d:", int64(n)*16384, 20*n)
	pieces = append(append(pieces, make([]byte, 20*n)...), "ee"...)
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"too-many-files.torrent", files.Bytes(), "more than 524288 files"},
		{"too-many-pieces.torrent", pieces, "1048577 piece hashes, more than the 1048576 allowed"},
		{"too-large.torrent", append([]byte("d"), make([]byte, meta.MaxTorrentFileSize)...), "larger than 32 MiB"},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{{"info", p}, {"info", "--json", p}} {
				code, stdout, stderr := badinputRun(t, args...)
				if code != 1 || stdout != "" {
					t.Errorf("shoal %s: exit %d, stdout %q", strings.Join(args, " "), code, stdout)
				}
				badinputOneLine(t, stderr, p, c.want)
			}
			tmp := t.TempDir()
			out, state := filepath.Join(tmp, "out"), filepath.Join(tmp, "state")
			code, _, stderr := badinputRun(t, "get", p, "-o", out, "--data-dir", state, "--listen", "127.0.0.1:0")
			if code != 1 {
				t.Errorf("get: exit %d, want 1", code)
			}
			badinputOneLine(t, stderr, p, c.want)
			badinputAbsentOrEmpty(t, tmp)
			code, _, stderr = badinputRun(t, "seed", p, "--dir", tmp, "--data-dir", state, "--listen", "127.0.0.1:0")
			if code != 1 {
				t.Errorf("seed: exit %d, want 1", code)
			}
			badinputOneLine(t, stderr, p, c.want)
			badinputAbsentOrEmpty(t, tmp)
		})
	}
}
