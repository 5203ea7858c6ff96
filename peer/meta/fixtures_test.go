package meta_test

// The .torrent fixtures in the repository's testdata/ folder are written by
//
//	SHOAL_WRITE_FIXTURES=1 go test ./peer/meta -run Fixtures
//
// which also writes them as seeds of the fuzz targets here. Without the variable the tests
// check that the committed files are exactly what the builders below produce, and that
// meta.LoadFile accepts the good ones and refuses each bad one with a one-line reason.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer/meta"
)

// fixtureDir is the repository's testdata folder, shared with cmd/shoal's tests.
const fixtureDir = "../../testdata"

type fixture struct {
	file  string
	build func() []byte
	// want lists what the error must mention; nil means the file must load.
	want []string
	// noSeed keeps a large file out of the fuzz seed corpus.
	noSeed bool
}

var fixtures = []fixture{
	{file: "good.torrent", build: func() []byte { return encodeMI(goodMetaInfo(goodInfo())) }},
	{file: "good-single.torrent", build: goodSingle},
	{file: "hybrid.torrent", build: func() []byte { return encodeInfo(hybridInfo(32)) }},

	{file: "empty.torrent", build: func() []byte { return nil }, want: []string{"empty file"}},
	{file: "not-bencode.torrent", build: func() []byte { return []byte("<html><body>404 not found</body></html>\n") },
		want: []string{"not a .torrent file"}},
	{file: "not-a-dict.torrent", build: func() []byte { return []byte("l4:spam4:eggse") }, want: []string{"not a .torrent file"}},
	{file: "truncated.torrent", build: func() []byte {
		b := encodeMI(goodMetaInfo(goodInfo()))
		return b[:len(b)*2/3]
	}, want: []string{"malformed .torrent"}},
	{file: "no-info.torrent", build: func() []byte {
		return encodeMI(&metainfo.MetaInfo{Announce: "http://127.0.0.1:6969/announce", Comment: "no info here"})
	}, want: []string{"no info dictionary"}},
	{file: "info-not-a-dict.torrent", build: func() []byte {
		return []byte("d8:announce30:http://127.0.0.1:6969/announce4:info4:spame")
	}, want: []string{"malformed .torrent info"}},
	{file: "piece-length-zero.torrent", build: func() []byte {
		i := goodInfo()
		i.PieceLength = 0
		return encodeInfo(i)
	}, want: []string{"piece length 0"}},
	{file: "piece-length-2p40.torrent", build: func() []byte {
		i := goodInfo()
		i.PieceLength = 1 << 40
		i.Pieces = i.Pieces[:20]
		return encodeInfo(i)
	}, want: []string{"piece length 1099511627776"}},
	{file: "piece-length-negative.torrent", build: func() []byte {
		i := goodInfo()
		i.PieceLength = -16384
		return encodeInfo(i)
	}, want: []string{"piece length -16384"}},
	{file: "pieces-not-multiple-of-20.torrent", build: func() []byte {
		i := goodInfo()
		i.Pieces = append(i.Pieces, 1, 2, 3, 4, 5, 6, 7)
		return encodeInfo(i)
	}, want: []string{"not a multiple of 20"}},
	{file: "pieces-count-mismatch.torrent", build: func() []byte {
		i := goodInfo()
		i.Pieces = i.Pieces[:len(i.Pieces)-20]
		return encodeInfo(i)
	}, want: []string{"6 piece hashes", "need 7"}},
	{file: "no-pieces.torrent", build: func() []byte {
		i := goodInfo()
		i.Pieces = nil
		return encodeInfo(i)
	}, want: []string{"0 piece hashes"}},
	{file: "huge-pieces.torrent", build: func() []byte {
		i := goodInfo()
		i.Pieces = bytes.Repeat(i.Pieces[:20], 3<<20/20) // 3 MiB of hashes for 110 KB of data
		return encodeInfo(i)
	}, want: []string{"157286 piece hashes"}, noSeed: true},
	{file: "zero-length.torrent", build: func() []byte {
		return encodeInfo(metainfo.Info{Name: "nothing", PieceLength: 16384})
	}, want: []string{"no data"}},
	{file: "negative-length.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[0].Length = -1
		return encodeInfo(i)
	}, want: []string{"negative length"}},
	{file: "path-dotdot.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[1].Path = []string{"..", "..", "evil.sh"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", `".."`}},
	{file: "name-dotdot.torrent", build: func() []byte {
		i := goodInfo()
		i.Name = ".."
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "torrent name"}},
	{file: "path-absolute.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[0].Path = []string{"/etc", "passwd"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "path separator"}},
	{file: "name-absolute.torrent", build: func() []byte {
		i := goodSingleInfo()
		i.Name = "/etc/passwd"
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "path separator"}},
	{file: "name-nul.torrent", build: func() []byte {
		i := goodSingleInfo()
		i.Name = "evil\x00.txt"
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "NUL"}},
	{file: "path-utf8-dotdot.torrent", build: func() []byte {
		// path is harmless but path.utf-8, which wins, climbs out.
		i := goodInfo()
		i.Files[0].PathUtf8 = []string{"..", "x"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", `".."`}},
	{file: "duplicate-path.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[1].Path = []string{"A.TXT"}
		return encodeInfo(i)
	}, want: []string{"listed twice"}},
	{file: "duplicate-path-exact.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[1].Path = []string{"a.txt"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", `"a.txt" is listed twice`}},
	{file: "file-and-folder.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[1].Path = []string{"a.txt", "b.bin"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", `"a.txt" is both a file and a folder`}},
	{file: "name-drive-letter.torrent", build: func() []byte {
		i := goodSingleInfo()
		i.Name = "C:"
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "drive letter"}},
	{file: "path-drive-letter.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[1].Path = []string{"c:", "Windows", "evil.dll"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "file 1", "drive letter"}},
	{file: "path-drive-backslash.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[0].Path = []string{`C:\Windows\evil.dll`}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "file 0", "path separator"}},
	{file: "path-unc.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[0].Path = []string{`\server\share`, "evil"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "path separator"}},
	{file: "path-backslash-dotdot.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[1].Path = []string{`..\..\evil.sh`}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "path separator"}},
	{file: "path-nul.torrent", build: func() []byte {
		i := goodInfo()
		i.Files[1].Path = []string{"sub", "b.bin\x00.txt"}
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "file 1", "NUL"}},
	{file: "name-long.torrent", build: func() []byte {
		i := goodSingleInfo()
		i.Name = strings.Repeat("n", 300)
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "300 bytes long, over 255"}},
	{file: "path-long.torrent", build: func() []byte {
		i := goodInfo()
		var p []string
		for range 20 {
			p = append(p, strings.Repeat("d", 250))
		}
		i.Files[1].Path = append(p, "b.bin")
		return encodeInfo(i)
	}, want: []string{"unsafe file name", "5025 bytes long, over 4096"}},
	{file: "pieces-too-many.torrent", build: func() []byte {
		i := goodInfo()
		i.Pieces = append(i.Pieces, i.Pieces[:20]...)
		return encodeInfo(i)
	}, want: []string{"8 piece hashes", "need 7"}},
	{file: "total-size-huge.torrent", build: func() []byte {
		i := goodSingleInfo()
		i.Length = 1 << 62
		i.PieceLength = 16 << 20
		i.Pieces = i.Pieces[:20]
		return encodeInfo(i)
	}, want: []string{"4611686018427387904 bytes", "274877906944 pieces", "more than the 1048576 allowed"}},
	{file: "deep-nesting.torrent", build: func() []byte {
		// 1,000 nested lists under a key no one reads.
		b := encodeMI(goodMetaInfo(goodSingleInfo()))
		return append([]byte("d1:!"+strings.Repeat("l", 1000)+strings.Repeat("e", 1000)), b[1:]...)
	}, want: []string{"malformed .torrent", "nesting depth"}},
	{file: "piece-length-not-power-of-two.torrent", build: func() []byte {
		// BEP 3 does not ask for a power of two, and libtorrent accepts any length.
		i := goodInfo()
		i.PieceLength = 30000
		i.Pieces = pieceHashes(append(append([]byte(nil), goodFileA...), goodFileB...), 30000)
		return encodeInfo(i)
	}},
	{file: "escapes.torrent", build: func() []byte {
		// Loads, but what it would print is made harmless: see TestFixtureEscapes.
		mi := goodMetaInfo(goodSingleInfo())
		mi.Comment = "\x1b[2J\x1b[31mred\r\nsecond line\u009b"
		mi.CreatedBy = "bell\x07"
		mi.Announce = "http://127.0.0.1:6969/\x1b[2J"
		mi.AnnounceList = [][]string{{"http://127.0.0.1:6969/\x1b[2J", "http://127.0.0.1:6969/announce"}, {"\x1b]0;title\x07"}}
		return encodeMI(mi)
	}},
	{file: "v2-only.torrent", build: func() []byte {
		i := hybridInfo(32)
		i.Files, i.Pieces = nil, nil
		return encodeInfo(i)
	}, want: []string{"v2-only"}},
	{file: "hybrid-bad-pieces-root.torrent", build: func() []byte {
		return encodeInfo(hybridInfo(5))
	}, want: []string{"pieces root"}},
}

// Deterministic content of the good fixtures, so tests can check their piece hashes.
var (
	goodFileA   = testData(40000, 100)
	goodFileB   = testData(70000, 101)
	goodSingleB = testData(50000, 102)
)

func goodInfo() metainfo.Info {
	i := metainfo.Info{
		Name:        "shoal-fixture",
		PieceLength: 16 << 10,
		Files: []metainfo.FileInfo{
			{Length: int64(len(goodFileA)), Path: []string{"a.txt"}},
			{Length: int64(len(goodFileB)), Path: []string{"sub", "b.bin"}},
		},
	}
	i.Pieces = pieceHashes(append(append([]byte(nil), goodFileA...), goodFileB...), int(i.PieceLength))
	return i
}

func goodSingleInfo() metainfo.Info {
	return metainfo.Info{
		Name:        "single.bin",
		PieceLength: 32 << 10,
		Length:      int64(len(goodSingleB)),
		Pieces:      pieceHashes(goodSingleB, 32<<10),
	}
}

func goodSingle() []byte {
	mi := goodMetaInfo(goodSingleInfo())
	mi.Announce = "udp://127.0.0.1:6969"
	mi.AnnounceList = [][]string{{"udp://127.0.0.1:6969", "http://127.0.0.1:6969/announce"}, {"http://127.0.0.2:80/announce"}}
	return encodeMI(mi)
}

// hybridInfo is a v1+v2 (BEP 52) torrent of two files, with a BEP 47 padding file between them
// in the v1 list. rootLen is the length of each v2 "pieces root" (32 when well formed).
func hybridInfo(rootLen int) metainfo.Info {
	const pl = 16 << 10
	a, b := testData(20000, 103), testData(5000, 104)
	pad := 2*pl - len(a)
	v1 := append(append(append([]byte(nil), a...), make([]byte, pad)...), b...)
	root := func(c byte) string { return strings.Repeat(string(rune(c)), rootLen) }
	return metainfo.Info{
		Name:        "hybrid",
		PieceLength: pl,
		Pieces:      pieceHashes(v1, pl),
		Files: []metainfo.FileInfo{
			{Length: int64(len(a)), Path: []string{"a.bin"}},
			{Length: int64(pad), Path: []string{".pad", fmt.Sprint(pad)}, ExtendedFileAttrs: metainfo.ExtendedFileAttrs{Attr: "p"}},
			{Length: int64(len(b)), Path: []string{"b.bin"}},
		},
		MetaVersion: 2,
		FileTree: metainfo.FileTree{Dir: map[string]metainfo.FileTree{
			"a.bin": {File: metainfo.FileTreeFile{Length: int64(len(a)), PiecesRoot: root('a')}},
			"b.bin": {File: metainfo.FileTreeFile{Length: int64(len(b)), PiecesRoot: root('b')}},
		}},
	}
}

func goodMetaInfo(info metainfo.Info) *metainfo.MetaInfo {
	ib, err := bencode.Marshal(&info) // a pointer, so FileTree's MarshalBencode is used
	if err != nil {
		panic(err)
	}
	return &metainfo.MetaInfo{
		InfoBytes:    ib,
		Announce:     "http://127.0.0.1:6969/announce",
		Comment:      "shoal test fixture",
		CreatedBy:    "shoal fixtures",
		CreationDate: 1700000000,
	}
}

func encodeInfo(info metainfo.Info) []byte { return encodeMI(goodMetaInfo(info)) }

func encodeMI(mi *metainfo.MetaInfo) []byte {
	var buf bytes.Buffer
	if err := mi.Write(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// fuzzSeed is a file of Go's native fuzz corpus format holding one []byte argument.
func fuzzSeed(args ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch a := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", a)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", a)
		default:
			panic(fmt.Sprintf("fuzzSeed: %T", a))
		}
	}
	return []byte(b.String())
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFixturesUpToDate(t *testing.T) {
	write := os.Getenv("SHOAL_WRITE_FIXTURES") == "1"
	for _, f := range fixtures {
		want := f.build()
		p := filepath.Join(fixtureDir, f.file)
		if write {
			writeFile(t, p, want)
			if !f.noSeed {
				writeFile(t, filepath.Join("testdata", "fuzz", "FuzzParseTorrent", strings.TrimSuffix(f.file, ".torrent")), fuzzSeed(want))
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("%v (regenerate with SHOAL_WRITE_FIXTURES=1 go test ./peer/meta -run Fixtures)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what its builder makes (regenerate with SHOAL_WRITE_FIXTURES=1 go test ./peer/meta -run Fixtures)", p)
		}
	}
	if write {
		for name, uri := range magnetSeeds {
			writeFile(t, filepath.Join("testdata", "fuzz", "FuzzParseMagnet", name), fuzzSeed(uri))
		}
		for name, s := range infoHashSeeds {
			writeFile(t, filepath.Join("testdata", "fuzz", "FuzzParseInfoHash", name), fuzzSeed(s))
		}
	}
}

func TestFixturesLoad(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			p := filepath.Join(fixtureDir, f.file)
			src, err := meta.LoadFile(p)
			if f.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if src != nil {
				t.Errorf("LoadFile returned a source beside the error")
			}
			checkOneLine(t, err, append([]string{p + ": "}, f.want...)...)
			if err != nil && len(err.Error()) > 400 {
				t.Errorf("error is %d bytes long: %.400s", len(err.Error()), err)
			}
			// Load, what the CLI calls, says the same.
			if _, err2 := meta.Load(p); err2 == nil || err2.Error() != err.Error() {
				t.Errorf("Load says %v, LoadFile %v", err2, err)
			}
		})
	}
}

func TestFixtureGood(t *testing.T) {
	src, err := meta.LoadFile(filepath.Join(fixtureDir, "good.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if src.Name != "shoal-fixture" || src.MetaInfo.Comment != "shoal test fixture" {
		t.Errorf("name %q comment %q", src.Name, src.MetaInfo.Comment)
	}
	if want := []string{"a.txt:40000", "sub/b.bin:70000"}; fmt.Sprint(filePaths(src.Info)) != fmt.Sprint(want) {
		t.Errorf("files %q, want %q", filePaths(src.Info), want)
	}
	checkPieces(t, src.Info, append(append([]byte(nil), goodFileA...), goodFileB...))
	mi, err := metainfo.LoadFromFile(filepath.Join(fixtureDir, "good.torrent"))
	if err != nil || mi.HashInfoBytes() != src.InfoHash {
		t.Errorf("anacrolix reads good.torrent as %v, %v", mi, err)
	}

	single, err := meta.LoadFile(filepath.Join(fixtureDir, "good-single.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	checkPieces(t, single.Info, goodSingleB)
	if want := "[[udp://127.0.0.1:6969 http://127.0.0.1:6969/announce] [http://127.0.0.2:80/announce]]"; fmt.Sprint(single.Trackers) != want {
		t.Errorf("trackers %v, want %s", single.Trackers, want)
	}
}

// Trackers holding control characters are dropped: no tracker has one, and printed they would
// drive the terminal.
func TestFixtureEscapes(t *testing.T) {
	src, err := meta.LoadFile(filepath.Join(fixtureDir, "escapes.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[[http://127.0.0.1:6969/announce]]"; fmt.Sprint(src.Trackers) != want {
		t.Errorf("trackers %q, want %s", src.Trackers, want)
	}
	if got := meta.Printable(src.MetaInfo.Comment); got != "\uFFFD[2J\uFFFD[31mred\uFFFD\uFFFDsecond line\uFFFD" {
		t.Errorf("Printable(comment) = %q", got)
	}
}

// A hybrid (v1 + v2) torrent's v1 pieces cover its padding files too.
func TestFixtureHybrid(t *testing.T) {
	src, err := meta.LoadFile(filepath.Join(fixtureDir, "hybrid.torrent"))
	if err != nil {
		t.Fatal(err)
	}
	if src.Info.NumPieces() != 3 || len(src.Info.Pieces) != 3*20 {
		t.Errorf("%d pieces, %d bytes of v1 hashes; want 3", src.Info.NumPieces(), len(src.Info.Pieces))
	}
}
