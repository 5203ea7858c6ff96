package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// hostileInfo is a folder torrent of two small files whose info dictionary is then spoiled by
// edit. Its pieces are hashes of zeros: no piece is ever served, only the metadata.
func hostileInfo(edit func(*metainfo.Info)) []byte {
	info := metainfo.Info{Name: "hostile", PieceLength: 16 << 10, Files: []metainfo.FileInfo{
		{Length: 20000, Path: []string{"a.bin"}},
		{Length: 30000, Path: []string{"sub", "b.bin"}},
	}}
	info.Pieces = make([]byte, 20*4)
	edit(&info)
	b, err := bencode.Marshal(&info)
	if err != nil {
		panic(err)
	}
	return b
}

// TestMagnetHostileMetadata fetches a magnet link's metadata from a peer that serves an info
// dictionary built to harm: it hashes to the link's info-hash, so it is the torrent, and shoal
// must refuse it in one line before it creates the download folder, a .part file or a resume
// record.
func TestMagnetHostileMetadata(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*metainfo.Info)
		want string // "" when the torrent library refuses the metadata itself: shoal waits on
	}{
		{"dotdot path", func(i *metainfo.Info) { i.Files[1].Path = []string{"..", "..", "evil.sh"} }, `unsafe file name in torrent: file 1 path "../../evil.sh"`},
		{"absolute name", func(i *metainfo.Info) { i.Name = "/tmp/evil" }, "path separator"},
		{"dotdot name", func(i *metainfo.Info) { i.Name = ".." }, "refers to a folder itself"},
		{"path.utf-8 climbs out", func(i *metainfo.Info) { i.Files[0].PathUtf8 = []string{"..", "x"} }, `".."`},
		{"drive letter", func(i *metainfo.Info) { i.Files[0].Path = []string{"C:", "evil"} }, "drive letter"},
		{"UNC path", func(i *metainfo.Info) { i.Files[0].Path = []string{`\\server\share`} }, "path separator"},
		{"NUL", func(i *metainfo.Info) { i.Files[0].Path = []string{"a\x00b"} }, "NUL"},
		{"long name", func(i *metainfo.Info) { i.Files[0].Path = []string{strings.Repeat("n", 300)} }, "300 bytes long"},
		{"duplicate", func(i *metainfo.Info) { i.Files[1].Path = []string{"A.BIN"} }, "listed twice"},
		{"file and folder", func(i *metainfo.Info) { i.Files[1].Path = []string{"a.bin", "b.bin"} }, "both a file and a folder"},
		{"piece length 2^40", func(i *metainfo.Info) { i.PieceLength, i.Pieces = 1<<40, i.Pieces[:20] }, "piece length 1099511627776"},
		{"piece length 8 KiB", func(i *metainfo.Info) { i.PieceLength, i.Pieces = 8<<10, make([]byte, 20*7) }, "piece length 8192"},
		{"no data", func(i *metainfo.Info) { i.Files[0].Length, i.Files[1].Length, i.Pieces = 0, 0, nil }, "no data"},
		// The torrent library refuses these itself (its validateInfo) and asks again.
		{"piece length 0", func(i *metainfo.Info) { i.PieceLength = 0 }, ""},
		{"piece length negative", func(i *metainfo.Info) { i.PieceLength = -16384 }, ""},
		{"too few hashes", func(i *metainfo.Info) { i.Pieces = i.Pieces[:20] }, ""},
		{"too many hashes", func(i *metainfo.Info) { i.Pieces = make([]byte, 20*9) }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			info := hostileInfo(c.edit)
			p, err := startMetaPeer("127.0.0.77", info)
			if err != nil {
				t.Fatal(err)
			}
			defer p.close()
			tmp := t.TempDir()
			out, state := filepath.Join(tmp, "out"), filepath.Join(tmp, "state")
			magnet := "magnet:?xt=urn:btih:" + p.infoHash.HexString() + "&x.pe=" + p.addr().String()

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if c.want == "" {
				// Cancel once the peer has served all the metadata and shoal dropped it.
				go func() {
					select {
					case <-p.ended:
						cancel()
					case <-ctx.Done():
					}
				}()
			}
			var stdout, stderr bytes.Buffer
			err = newApp(&stdout, &stderr).Run(ctx, []string{"shoal", "get", "--json", magnet,
				"-o", out, "--data-dir", state, "--listen", "127.0.0.1:0"})
			code := exitCode(err, &stderr)
			if p.served.Load() == 0 {
				t.Fatalf("the peer served no metadata (exit %d, stderr %q)", code, stderr.String())
			}
			if c.want != "" {
				if code != 1 {
					t.Errorf("exit %d, want 1", code)
				}
				badinputOneLine(t, stderr.String(), "refusing metadata from peers", c.want)
			} else {
				if code != 130 {
					t.Errorf("exit %d, want 130 (interrupted while waiting for good metadata); stderr %q", code, stderr.String())
				}
				if strings.Contains(stdout.String(), `"event":"start"`) {
					t.Errorf("the download started: %s", stdout.String())
				}
			}
			for _, p := range []string{out, filepath.Join(state, "resume")} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists (%v): written before the metadata was checked", p, err)
				}
			}
			if t.Failed() {
				listTree(t, tmp)
			}
		})
	}
}

// listTree logs every path under dir.
func listTree(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			t.Logf("on disk: %s (%d bytes)", p, fi.Size())
		}
		return nil
	})
}
