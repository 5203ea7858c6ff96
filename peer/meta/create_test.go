package meta_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer/meta"
)

func TestPieceLengthFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		total int64
		want  int64
	}{
		{"empty", 0, 256 << 10},
		{"1 KiB", 1 << 10, 256 << 10},
		{"64 MiB", 64 << 20, 256 << 10},
		{"500 MiB", 500 << 20, 256 << 10},
		{"1 GiB", 1 << 30, 1 << 20},
		{"4 GiB", 4 << 30, 4 << 20},
		{"1 TiB", 1 << 40, 16 << 20},
		{"1 PiB", 1 << 50, 16 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := meta.PieceLengthFor(tc.total)
			if got != tc.want {
				t.Fatalf("PieceLengthFor(%d) = %d, want %d", tc.total, got, tc.want)
			}
			if err := meta.CheckPieceLength(got); err != nil {
				t.Fatalf("PieceLengthFor chose a length CheckPieceLength refuses: %v", err)
			}
		})
	}
}

func TestCheckPieceLength(t *testing.T) {
	for _, pl := range []int64{16 << 10, 32 << 10, 256 << 10, 1 << 20, 64 << 20} {
		if err := meta.CheckPieceLength(pl); err != nil {
			t.Errorf("CheckPieceLength(%d): %v", pl, err)
		}
	}
	for _, pl := range []int64{0, -1, -16384, 1, 8 << 10, 3000, 48 << 10, 128 << 20, 1 << 40} {
		checkOneLine(t, meta.CheckPieceLength(pl), "piece length", "power of two")
	}
}

func TestCreateFile(t *testing.T) {
	dir := t.TempDir()
	data := testData(300<<10+123, 1) // two 256 KiB pieces, the last one short
	writeTree(t, dir, map[string][]byte{"movie.bin": data})

	var lastHashed, lastTotal int64
	src, err := meta.Create(filepath.Join(dir, "movie.bin"), meta.CreateOptions{
		CreatedBy: "shoal test",
		Progress:  func(h, tot int64) { lastHashed, lastTotal = h, tot },
	})
	if err != nil {
		t.Fatal(err)
	}
	info := src.Info
	if src.Name != "movie.bin" || info.Name != "movie.bin" {
		t.Errorf("name %q / %q, want movie.bin", src.Name, info.Name)
	}
	if info.IsDir() || info.Length != int64(len(data)) {
		t.Errorf("want a single-file torrent of %d bytes, got dir=%v length=%d", len(data), info.IsDir(), info.Length)
	}
	if info.PieceLength != 256<<10 {
		t.Errorf("piece length %d, want 256 KiB", info.PieceLength)
	}
	if info.NumPieces() != 2 {
		t.Errorf("%d pieces, want 2", info.NumPieces())
	}
	checkPieces(t, info, data)
	if lastHashed != int64(len(data)) || lastTotal != int64(len(data)) {
		t.Errorf("progress ended at %d/%d, want %d/%d", lastHashed, lastTotal, len(data), len(data))
	}
	if info.Private != nil {
		t.Errorf("private set without asking")
	}
	if src.MetaInfo.CreatedBy != "shoal test" || src.MetaInfo.CreationDate == 0 {
		t.Errorf("created by %q at %d", src.MetaInfo.CreatedBy, src.MetaInfo.CreationDate)
	}
	if src.InfoHash != metainfo.HashBytes(src.MetaInfo.InfoBytes) {
		t.Errorf("infohash is not the SHA-1 of the info bytes")
	}
	if len(src.Trackers) != 0 || src.MetaInfo.Announce != "" {
		t.Errorf("trackers %v without any announce option", src.Trackers)
	}
}

func TestCreateFolder(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "album")
	files := map[string][]byte{
		"b.txt":                  testData(10000, 2),
		"a.txt":                  testData(30000, 3),
		"sub/one.bin":            testData(1, 4),
		"sub/deeper/two.bin":     testData(50000, 5),
		"sub/deeper/z/three.dat": testData(16384, 6),
		"zz/last":                testData(777, 7),
	}
	writeTree(t, root, files)
	if err := os.MkdirAll(filepath.Join(root, "empty", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}

	src, err := meta.Create(root, meta.CreateOptions{PieceLength: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	info := src.Info
	if !info.IsDir() || info.Name != "album" || src.Name != "album" {
		t.Fatalf("want a folder torrent named album, got dir=%v name=%q", info.IsDir(), info.Name)
	}
	if info.PieceLength != 16<<10 {
		t.Errorf("piece length %d, want the 16 KiB asked for", info.PieceLength)
	}
	// Files come in path order; empty folders are left out.
	order := []string{"a.txt", "b.txt", "sub/deeper/two.bin", "sub/deeper/z/three.dat", "sub/one.bin", "zz/last"}
	var want []string
	var all []byte
	for _, p := range order {
		want = append(want, p+":"+strconv.Itoa(len(files[p])))
		all = append(all, files[p]...)
	}
	if got := filePaths(info); !reflect.DeepEqual(got, want) {
		t.Errorf("files\n got %q\nwant %q", got, want)
	}
	checkPieces(t, info, all)
}

func TestCreateOptions(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"f": testData(40000, 8)})
	p := filepath.Join(dir, "f")

	plain, err := meta.Create(p, meta.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("private", func(t *testing.T) {
		src, err := meta.Create(p, meta.CreateOptions{Private: true})
		if err != nil {
			t.Fatal(err)
		}
		if src.Info.Private == nil || !*src.Info.Private {
			t.Fatal("private flag not set in the info")
		}
		if src.InfoHash == plain.InfoHash {
			t.Error("private and public torrents of the same data share an infohash")
		}
		again := roundTrip(t, src)
		if again.Info.Private == nil || !*again.Info.Private {
			t.Error("private flag lost in the .torrent file")
		}
	})

	t.Run("one tracker", func(t *testing.T) {
		src, err := meta.Create(p, meta.CreateOptions{Announce: []string{"http://127.0.0.1:6969/announce"}})
		if err != nil {
			t.Fatal(err)
		}
		if src.MetaInfo.Announce != "http://127.0.0.1:6969/announce" || src.MetaInfo.AnnounceList != nil {
			t.Errorf("announce %q, list %v", src.MetaInfo.Announce, src.MetaInfo.AnnounceList)
		}
		if want := [][]string{{"http://127.0.0.1:6969/announce"}}; !reflect.DeepEqual(src.Trackers, want) {
			t.Errorf("trackers %v, want %v", src.Trackers, want)
		}
		if src.InfoHash != plain.InfoHash {
			t.Error("trackers changed the infohash; they live outside the info dictionary")
		}
	})

	t.Run("tiers", func(t *testing.T) {
		urls := []string{"http://127.0.0.1:1/a", "udp://127.0.0.1:2/b", "https://127.0.0.1:3/c"}
		src, err := meta.Create(p, meta.CreateOptions{Announce: urls})
		if err != nil {
			t.Fatal(err)
		}
		want := [][]string{{urls[0]}, {urls[1]}, {urls[2]}}
		if src.MetaInfo.Announce != urls[0] {
			t.Errorf("announce %q, want the first URL", src.MetaInfo.Announce)
		}
		if !reflect.DeepEqual([][]string(src.MetaInfo.AnnounceList), want) {
			t.Errorf("announce-list %v, want %v", src.MetaInfo.AnnounceList, want)
		}
		if again := roundTrip(t, src); !reflect.DeepEqual(again.Trackers, want) {
			t.Errorf("tiers after a round trip %v, want %v", again.Trackers, want)
		}
	})

	t.Run("comment", func(t *testing.T) {
		src, err := meta.Create(p, meta.CreateOptions{Comment: "made by a test, ünïcode too"})
		if err != nil {
			t.Fatal(err)
		}
		if again := roundTrip(t, src); again.MetaInfo.Comment != "made by a test, ünïcode too" {
			t.Errorf("comment %q after a round trip", again.MetaInfo.Comment)
		}
	})

	t.Run("explicit piece length", func(t *testing.T) {
		src, err := meta.Create(p, meta.CreateOptions{PieceLength: 32 << 10})
		if err != nil {
			t.Fatal(err)
		}
		if src.Info.PieceLength != 32<<10 || src.Info.NumPieces() != 2 {
			t.Errorf("piece length %d, %d pieces; want 32 KiB and 2", src.Info.PieceLength, src.Info.NumPieces())
		}
	})

	t.Run("bad piece length", func(t *testing.T) {
		for _, pl := range []int64{3000, 8 << 10, 128 << 20, -1} {
			_, err := meta.Create(p, meta.CreateOptions{PieceLength: pl})
			checkOneLine(t, err, "piece length")
		}
	})

	t.Run("bad announce", func(t *testing.T) {
		for _, a := range []string{"ftp://127.0.0.1/x", "not a url", "http://", "127.0.0.1:6969"} {
			_, err := meta.Create(p, meta.CreateOptions{Announce: []string{a}})
			checkOneLine(t, err, "announce URL")
		}
	})
}

func TestCreateRefuses(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"zero": nil})
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "no such file or folder"},
		{filepath.Join(dir, "zero"), "0 bytes"},
		{filepath.Join(dir, "empty"), "holds no files"},
	} {
		_, err := meta.Create(tc.path, meta.CreateOptions{})
		checkOneLine(t, err, tc.want)
	}
}

// roundTrip writes src's .torrent and reads it back with meta.LoadFile.
func roundTrip(t *testing.T, src *meta.Source) *meta.Source {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.torrent")
	if err := meta.WriteTorrent(src, p); err != nil {
		t.Fatal(err)
	}
	again, err := meta.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return again
}

func TestWriteTorrentRoundTrip(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"docs/readme.txt": testData(5000, 10),
		"docs/img/a.png":  testData(70000, 11),
		"data.bin":        testData(100000, 12),
	}
	root := filepath.Join(dir, "pack")
	writeTree(t, root, files)
	src, err := meta.Create(root, meta.CreateOptions{
		PieceLength: 16 << 10,
		Announce:    []string{"http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"},
		Comment:     "round trip",
		Private:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pack.torrent")
	if err := meta.WriteTorrent(src, out); err != nil {
		t.Fatal(err)
	}

	// The torrent library's own parser agrees.
	mi, err := metainfo.LoadFromFile(out)
	if err != nil {
		t.Fatalf("anacrolix cannot read what shoal wrote: %v", err)
	}
	if mi.HashInfoBytes() != src.InfoHash {
		t.Errorf("anacrolix infohash %s, shoal %s", mi.HashInfoBytes().HexString(), src.InfoHash.HexString())
	}
	ainfo, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}

	// And so does shoal's.
	got, err := meta.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got.InfoHash != src.InfoHash {
		t.Errorf("LoadFile infohash %s, want %s", got.InfoHash.HexString(), src.InfoHash.HexString())
	}
	for _, info := range []*metainfo.Info{&ainfo, got.Info} {
		if info.BestName() != "pack" {
			t.Errorf("name %q, want pack", info.BestName())
		}
		if !reflect.DeepEqual(filePaths(info), filePaths(src.Info)) {
			t.Errorf("files %q, want %q", filePaths(info), filePaths(src.Info))
		}
		if !bytes.Equal(info.Pieces, src.Info.Pieces) {
			t.Error("piece hashes differ after a round trip")
		}
		if info.Private == nil || !*info.Private {
			t.Error("private flag lost")
		}
	}
	if got.MetaInfo.Comment != "round trip" || mi.Comment != "round trip" {
		t.Errorf("comment %q / %q", got.MetaInfo.Comment, mi.Comment)
	}
	if want := [][]string{{"http://127.0.0.1:6969/announce"}, {"udp://127.0.0.1:6969"}}; !reflect.DeepEqual(got.Trackers, want) {
		t.Errorf("trackers %v, want %v", got.Trackers, want)
	}

	// The pieces really are SHA-1 hashes of the data, in the listed order.
	var all []byte
	for _, f := range got.Info.UpvertedFiles() {
		all = append(all, files[strings.Join(f.BestPath(), "/")]...)
	}
	checkPieces(t, got.Info, all)

	// WriteTorrent does not overwrite.
	before, _ := os.ReadFile(out)
	checkOneLine(t, meta.WriteTorrent(src, out), "already exists")
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Error("WriteTorrent changed an existing file")
	}
	checkOneLine(t, meta.WriteTorrent(&meta.Source{}, filepath.Join(dir, "none.torrent")), "no metadata")
	if _, err := os.Stat(filepath.Join(dir, "none.torrent")); err == nil {
		t.Error("WriteTorrent left a file behind for a source without metadata")
	}
}

func TestLoadDispatch(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string][]byte{"f.bin": testData(20000, 20)})
	src, err := meta.Create(filepath.Join(dir, "f.bin"), meta.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(dir, "f.torrent")
	if err := meta.WriteTorrent(src, tf); err != nil {
		t.Fatal(err)
	}
	hexIH := src.InfoHash.HexString()

	t.Run("magnet", func(t *testing.T) {
		s, err := meta.Load("magnet:?xt=urn:btih:" + hexIH + "&dn=f.bin")
		if err != nil {
			t.Fatal(err)
		}
		if s.InfoHash != src.InfoHash || s.Name != "f.bin" || s.Info != nil {
			t.Errorf("got %+v", s)
		}
	})
	t.Run("upper-case scheme", func(t *testing.T) {
		s, err := meta.Load("MAGNET:?xt=urn:btih:" + hexIH)
		if err != nil || s.InfoHash != src.InfoHash {
			t.Fatalf("%v %+v", err, s)
		}
	})
	t.Run("hex infohash", func(t *testing.T) {
		s, err := meta.Load(hexIH)
		if err != nil {
			t.Fatal(err)
		}
		if s.InfoHash != src.InfoHash || s.Info != nil || s.Name != "" {
			t.Errorf("got %+v", s)
		}
	})
	t.Run("base32 infohash", func(t *testing.T) {
		s, err := meta.Load(strings.ToLower(base32Of(src.InfoHash)))
		if err != nil || s.InfoHash != src.InfoHash {
			t.Fatalf("%v %+v", err, s)
		}
	})
	t.Run("torrent file", func(t *testing.T) {
		s, err := meta.Load(tf)
		if err != nil {
			t.Fatal(err)
		}
		if s.InfoHash != src.InfoHash || s.Info == nil || s.Name != "f.bin" {
			t.Errorf("got %+v", s)
		}
	})
	t.Run("file named like an infohash wins", func(t *testing.T) {
		other := strings.Repeat("ab", 20)
		b, _ := os.ReadFile(tf)
		writeTree(t, dir, map[string][]byte{other: b})
		t.Chdir(dir)
		s, err := meta.Load(other)
		if err != nil {
			t.Fatal(err)
		}
		if s.Info == nil || s.InfoHash != src.InfoHash {
			t.Errorf("Load read %q as an infohash, not as the file of that name", other)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := meta.Load(filepath.Join(dir, "nope.torrent"))
		checkOneLine(t, err, "nope.torrent", "no such file")
	})
	t.Run("empty", func(t *testing.T) {
		_, err := meta.Load("")
		checkOneLine(t, err, "no torrent given")
	})
	t.Run("almost an infohash", func(t *testing.T) {
		_, err := meta.Load(strings.Repeat("g", 40))
		checkOneLine(t, err, "no such file")
	})
	t.Run("folder", func(t *testing.T) {
		_, err := meta.Load(dir)
		if err == nil {
			t.Fatal("a folder loaded as a torrent")
		}
		checkOneLine(t, err, dir)
	})
}
