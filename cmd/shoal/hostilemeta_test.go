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
	"github.com/shoalp2p/shoal/peer/badpeer"
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
		info []byte
		want string
		// lib says the torrent library refuses this metadata too, and logs a warning of its own
		// (shown on stderr unless --quiet) before shoal's line.
		lib bool
	}{
		{"dotdot path", hostileInfo(func(i *metainfo.Info) { i.Files[1].Path = []string{"..", "..", "evil.sh"} }), `unsafe file name in torrent: file 1 path "../../evil.sh"`, false},
		{"absolute name", hostileInfo(func(i *metainfo.Info) { i.Name = "/tmp/evil" }), "path separator", false},
		{"dotdot name", hostileInfo(func(i *metainfo.Info) { i.Name = ".." }), "refers to a folder itself", false},
		{"path.utf-8 climbs out", hostileInfo(func(i *metainfo.Info) { i.Files[0].PathUtf8 = []string{"..", "x"} }), `".."`, false},
		{"drive letter", hostileInfo(func(i *metainfo.Info) { i.Files[0].Path = []string{"C:", "evil"} }), "drive letter", false},
		{"UNC path", hostileInfo(func(i *metainfo.Info) { i.Files[0].Path = []string{`\\server\share`} }), "path separator", false},
		{"NUL", hostileInfo(func(i *metainfo.Info) { i.Files[0].Path = []string{"a\x00b"} }), "NUL", false},
		{"long name", hostileInfo(func(i *metainfo.Info) { i.Files[0].Path = []string{strings.Repeat("n", 300)} }), "300 bytes long", false},
		{"duplicate", hostileInfo(func(i *metainfo.Info) { i.Files[1].Path = []string{"A.BIN"} }), "listed twice", false},
		{"file and folder", hostileInfo(func(i *metainfo.Info) { i.Files[1].Path = []string{"a.bin", "b.bin"} }), "both a file and a folder", false},
		{"piece length 2^40", hostileInfo(func(i *metainfo.Info) { i.PieceLength, i.Pieces = 1<<40, i.Pieces[:20] }), "piece length 1099511627776", false},
		{"piece length 8 KiB", hostileInfo(func(i *metainfo.Info) { i.PieceLength, i.Pieces = 8<<10, make([]byte, 20*7) }), "piece length 8192", false},
		{"no data", hostileInfo(func(i *metainfo.Info) { i.Files[0].Length, i.Files[1].Length, i.Pieces = 0, 0, nil }), "no data", false},
		{"piece length 0", hostileInfo(func(i *metainfo.Info) { i.PieceLength = 0 }), "piece length 0 is outside", true},
		{"piece length negative", hostileInfo(func(i *metainfo.Info) { i.PieceLength = -16384 }), "piece length -16384", true},
		{"too few hashes", hostileInfo(func(i *metainfo.Info) { i.Pieces = i.Pieces[:20] }), "1 piece hashes but its 50000 bytes need 4", true},
		{"too many hashes", hostileInfo(func(i *metainfo.Info) { i.Pieces = make([]byte, 20*9) }), "9 piece hashes but its 50000 bytes need 4", true},
		{"not a dictionary", []byte("l4:spame"), "malformed info dictionary", true},
		{"garbage", []byte("d4:name3:abc12:piece lengthi16384e6:piecesi1ee"), "malformed info dictionary", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ih := metainfo.HashBytes(c.info)
			p, err := badpeer.StartMetadata("127.0.0.77", ih, c.info)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			tmp := t.TempDir()
			out, state := filepath.Join(tmp, "out"), filepath.Join(tmp, "state")
			magnet := "magnet:?xt=urn:btih:" + ih.HexString() + "&x.pe=" + p.Addr().String()

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			err = newApp(&stdout, &stderr).Run(ctx, []string{"shoal", "get", "--json", magnet,
				"-o", out, "--data-dir", state, "--listen", "127.0.0.1:0"})
			code := exitCode(err, &stderr)
			if p.Served() == 0 {
				t.Fatalf("the peer served no metadata (exit %d, stderr %q)", code, stderr.String())
			}
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			msg := stderr.String()
			if c.lib {
				// Keep shoal's own line; the library's warnings come before it.
				lines := strings.SplitAfter(strings.TrimSuffix(msg, "\n"), "\n")
				for _, l := range lines[:len(lines)-1] {
					if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "github.com/anacrolix/torrent") {
						t.Errorf("stderr has a line that is not the library's warning: %q", l)
					}
				}
				msg = lines[len(lines)-1] + "\n"
			}
			badinputOneLine(t, msg, "refusing metadata from peers", c.want)
			if strings.Contains(stdout.String(), `"event":"start"`) {
				t.Errorf("the download started: %s", stdout.String())
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

// TestMagnetLyingMetadata: a peer serves hostile metadata under the info-hash of another
// torrent. It is not the torrent (its hash differs), so it must not make shoal give up the
// download: shoal ignores it and waits for the real metadata, writing nothing.
func TestMagnetLyingMetadata(t *testing.T) {
	honest := metainfo.HashBytes(hostileInfo(func(*metainfo.Info) {}))
	for _, c := range []struct {
		name string
		info []byte
	}{
		{"dotdot path", hostileInfo(func(i *metainfo.Info) { i.Files[1].Path = []string{"..", "evil.sh"} })},
		{"piece length 0", hostileInfo(func(i *metainfo.Info) { i.PieceLength = 0 })},
		{"garbage", []byte("d4:name3:abc12:piece lengthi16384e6:pieces1:xe")},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := badpeer.StartMetadata("127.0.0.78", honest, c.info)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			tmp := t.TempDir()
			out, state := filepath.Join(tmp, "out"), filepath.Join(tmp, "state")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Stop once the peer has served its metadata and shoal dropped the connection.
			go func() {
				select {
				case <-p.Ended():
					cancel()
				case <-ctx.Done():
				}
			}()
			var stdout, stderr bytes.Buffer
			err = newApp(&stdout, &stderr).Run(ctx, []string{"shoal", "get", "--json", "--quiet",
				"magnet:?xt=urn:btih:" + honest.HexString() + "&x.pe=" + p.Addr().String(),
				"-o", out, "--data-dir", state, "--listen", "127.0.0.1:0"})
			code := exitCode(err, &stderr)
			if p.Served() == 0 {
				t.Fatalf("the peer served no metadata (exit %d, stderr %q)", code, stderr.String())
			}
			if code != 130 || strings.Contains(stderr.String(), "refusing") {
				t.Errorf("exit %d, stderr %q: want 130, interrupted while waiting for the real metadata", code, stderr.String())
			}
			for _, p := range []string{out, filepath.Join(state, "resume")} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Errorf("%s exists (%v)", p, err)
				}
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
