package storage_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/storage"
)

// single is a one-file torrent named name.
func single(name string) metainfo.Info {
	return metainfo.Info{Name: name, PieceLength: 16 << 10, Length: 1}
}

// multi is a folder torrent named top holding one byte at each path.
func multi(top string, paths ...[]string) metainfo.Info {
	info := metainfo.Info{Name: top, PieceLength: 16 << 10}
	for _, p := range paths {
		info.Files = append(info.Files, metainfo.FileInfo{Length: 1, Path: p})
	}
	return info
}

func seg(s ...string) []string { return s }

func TestCheckInfoRefuses(t *testing.T) {
	long := strings.Repeat("x", 300)
	deep := make([]string, 20)
	for i := range deep {
		deep[i] = strings.Repeat("d", 250)
	}
	bad := []string{
		"..", ".", "", "/etc/passwd", "/", "a/b", "a/", "/a", `a\b`, `..\..\evil`, `\`,
		"C:evil", "c:", `C:\Windows`, "z:x",
		"x\x00y", "\x00", "tab\there", "new\nline", "cr\r", "del\x7f", "\x1b[31mred", "\x01",
		long, "\xff\xfe", "ok\xc3", "\xed\xa0\x80", // lone surrogate
	}
	type tc struct {
		name string
		info metainfo.Info
		want string
		path bool // the error wraps ErrUnsafePath
	}
	var cases []tc
	for _, b := range bad {
		cases = append(cases,
			tc{fmt.Sprintf("single name %q", b), single(b), "torrent name", true},
			tc{fmt.Sprintf("folder name %q", b), multi(b, seg("f")), "torrent name", true},
			tc{fmt.Sprintf("segment %q", b), multi("top", seg("ok"), seg("dir", b)), "file 1 path", true},
			tc{fmt.Sprintf("first segment %q", b), multi("top", seg(b, "f")), "file 0 path", true},
		)
	}
	utf8Name := single("ok")
	utf8Name.NameUtf8 = ".."
	utf8Path := multi("top", seg("ok"))
	utf8Path.Files[0].PathUtf8 = seg("..", "x")
	negative := multi("top", seg("a"), seg("b"))
	negative.Files[1].Length = -5
	negSingle := single("s")
	negSingle.Length = -1
	overflow := multi("top", seg("a"), seg("b"))
	overflow.Files[0].Length, overflow.Files[1].Length = math.MaxInt64, 1
	tooMany := metainfo.Info{Name: "top", PieceLength: 16 << 10, Files: make([]metainfo.FileInfo, storage.MaxFiles+1)}
	for i := range tooMany.Files {
		tooMany.Files[i] = metainfo.FileInfo{Length: 1, Path: seg(fmt.Sprint(i))}
	}
	cases = append(cases,
		tc{"too many files", tooMany, "524289 files, more than the 524288 allowed", false},
		tc{"long name quoted short", multi("top", seg(strings.Repeat("é", 200)+"\\x")), `"éééé`, true},
		tc{"name.utf-8 wins over name", utf8Name, "torrent name", true},
		tc{"path.utf-8 wins over path", utf8Path, `".."`, true},
		tc{"empty path", multi("top", seg("a"), seg()), "empty path", true},
		tc{"duplicate path", multi("top", seg("a", "b"), seg("c"), seg("a", "b")), "listed twice", true},
		tc{"case collision", multi("top", seg("Readme.md"), seg("README.MD")), "listed twice", true},
		tc{"case collision in a folder", multi("top", seg("Dir", "x"), seg("dir", "x")), "listed twice", true},
		tc{"file then folder", multi("top", seg("a"), seg("a", "b")), "both a file and a folder", true},
		tc{"folder then file", multi("top", seg("a", "b", "c"), seg("a", "b")), "listed twice", true},
		tc{"file then folder, other case", multi("top", seg("A"), seg("a", "b")), "both a file and a folder", true},
		tc{"path too long", multi("top", deep), "bytes long", true},
		tc{"negative length", negative, "negative length", false},
		tc{"negative single length", negSingle, "negative length", false},
		tc{"sizes overflow", overflow, "overflow", false},
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := storage.CheckInfo(&c.info)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not mention %q", msg, c.want)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error spans several lines: %q", msg)
			}
			if len(msg) > 300 {
				t.Errorf("error is %d bytes long: %.300s", len(msg), msg)
			}
			if errors.Is(err, storage.ErrUnsafePath) != c.path {
				t.Errorf("errors.Is(%q, ErrUnsafePath) = %v, want %v", msg, !c.path, c.path)
			}
		})
	}
}

func TestCheckInfoAccepts(t *testing.T) {
	max := strings.Repeat("m", 255)
	for _, c := range []struct {
		name string
		info metainfo.Info
	}{
		{"plain", single("file.bin")},
		{"spaces", single("my holiday video (2024).mkv")},
		{"leading and trailing space", single(" padded ")},
		{"unicode", single("日本語のファイル.txt")},
		{"accents", single("Ünïcödé – “quotes”.pdf")},
		{"emoji", single("🎵 music 🎶")},
		{"dots inside", single("a..b")},
		{"three dots", single("...")},
		{"hidden", single(".hidden")},
		{"dash", single("-")},
		{"colon later", single("ab:c")},
		{"255 bytes", single(max)},
		{"4096-byte path", multi("top", append(slices.Repeat(seg(strings.Repeat("p", 250)), 16), strings.Repeat("q", 4096-16*251)))},
		{"folder", multi("Album 2024", seg("01 - intro.flac"), seg("cover art", "front.jpg"), seg("cover art", "back.jpg"))},
		{"nested", multi("top", seg("a", "b", "c", "d.txt"), seg("a", "b", "e.txt"), seg("a", "f.txt"), seg("g"))},
		{"unicode folders", multi("données", seg("répertoire", "fichier é.txt"), seg("目录", "文件"))},
		{"padding files", multi("top", seg("a"), seg(".pad", "16383"), seg("b"))},
		{"same name in two folders", multi("top", seg("x", "readme"), seg("y", "readme"))},
		{"prefix but not a folder", multi("top", seg("a"), seg("ab", "c"), seg("a.b"))},
		{"zero-length file", func() metainfo.Info { i := multi("top", seg("empty")); i.Files[0].Length = 0; return i }()},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := storage.CheckInfo(&c.info); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A v2 file tree is listed by the torrent library, which panics on a "pieces root" that is not
// 32 bytes long and divides by the piece length.
func TestCheckInfoV2FileTree(t *testing.T) {
	tree := func(root string, pl int64) metainfo.Info {
		return metainfo.Info{Name: "v2", PieceLength: pl, MetaVersion: 2, FileTree: metainfo.FileTree{
			Dir: map[string]metainfo.FileTree{"dir": {Dir: map[string]metainfo.FileTree{
				"f": {File: metainfo.FileTreeFile{Length: 10, PiecesRoot: root}},
			}}},
		}}
	}
	ok := tree(strings.Repeat("r", 32), 16384)
	if err := storage.CheckInfo(&ok); err != nil {
		t.Errorf("well-formed v2 tree: %v", err)
	}
	for _, c := range []struct {
		info metainfo.Info
		want string
	}{
		{tree("short", 16384), "5-byte pieces root"},
		{tree(strings.Repeat("r", 33), 16384), "33-byte pieces root"},
		{tree(strings.Repeat("r", 32), 0), "piece length 0"},
		{tree(strings.Repeat("r", 32), -1), "piece length -1"},
	} {
		err := storage.CheckInfo(&c.info)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error mentioning %q", err, c.want)
		}
	}
	evil := metainfo.Info{Name: "v2", PieceLength: 16384, MetaVersion: 2, FileTree: metainfo.FileTree{
		Dir: map[string]metainfo.FileTree{"..": {File: metainfo.FileTreeFile{Length: 10}}},
	}}
	if err := storage.CheckInfo(&evil); !errors.Is(err, storage.ErrUnsafePath) {
		t.Errorf("v2 file named ..: %v", err)
	}
}

// listAll lists every path under dir, relative to it.
func listAll(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOpenTorrentRefusesUnsafeInfo(t *testing.T) {
	for _, c := range []struct {
		name string
		info metainfo.Info
	}{
		{"dotdot path", multi("top", seg("ok"), seg("..", "..", "evil"))},
		{"dotdot name", single("..")},
		{"absolute name", single("/tmp/evil")},
		{"separator in segment", multi("top", seg("../../evil"))},
		{"collision", multi("top", seg("a"), seg("A"))},
	} {
		for _, complete := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s complete=%v", c.name, complete), func(t *testing.T) {
				base := t.TempDir()
				dir := filepath.Join(base, "downloads", "here")
				st, err := storage.Open(storage.Options{Dir: dir, Complete: complete})
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				c.info.Pieces = make([]byte, 20)
				_, err = st.OpenTorrent(context.Background(), &c.info, metainfo.HashBytes([]byte(c.name)))
				if !errors.Is(err, storage.ErrUnsafePath) {
					t.Fatalf("OpenTorrent: %v, want ErrUnsafePath", err)
				}
				if got := listAll(t, dir); len(got) != 0 {
					t.Errorf("download folder holds %q after a refused torrent", got)
				}
				if got := listAll(t, base); strings.Join(got, ",") != "downloads,downloads/here" {
					t.Errorf("files appeared outside the download folder: %q", got)
				}
			})
		}
	}
}

// A safe torrent's data lands inside Dir/Name, and only there.
func TestOpenTorrentWritesInside(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "dl")
	info := multi("top", seg("a", "b.bin"), seg("c.bin"))
	info.Files[0].Length, info.Files[1].Length = 10, 6
	info.Pieces = make([]byte, 20)
	st, err := storage.Open(storage.Options{Dir: dir, StateDir: filepath.Join(base, "state")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tor, err := st.OpenTorrent(context.Background(), &info, metainfo.HashBytes([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tor.Piece(info.Piece(0)).WriteAt([]byte("0123456789abcdef"), 0); err != nil {
		t.Fatal(err)
	}
	// A piece not yet verified is held in memory; closing the torrent writes it out.
	if err := tor.Close(); err != nil {
		t.Fatal(err)
	}
	if got := st.Root(&info); got != filepath.Join(dir, "top") {
		t.Errorf("Root = %s", got)
	}
	for _, p := range listAll(t, base) {
		if p != "dl" && p != "state" && !strings.HasPrefix(p, "state"+string(filepath.Separator)) &&
			!strings.HasPrefix(p, filepath.Join("dl", "top")) {
			t.Errorf("%s written outside dl/top", p)
		}
	}
	if got := listAll(t, filepath.Join(dir, "top")); len(got) == 0 {
		t.Error("nothing written for the piece")
	}
}

// Seeds for FuzzCheckInfo, written to testdata/fuzz by SHOAL_WRITE_FIXTURES=1.
type checkInfoSeed struct {
	name, nameUtf8, a, b, c string
	la, lb, pl              int64
	isMulti, useUtf8, v2    bool
}

var checkInfoSeeds = map[string]checkInfoSeed{
	"single":        {"file.bin", "", "", "", "", 1, 0, 16384, false, false, false},
	"multi":         {"top", "", "a", "b", "c", 1, 2, 16384, true, false, false},
	"dotdot":        {"top", "", "..", "b", "c", 1, 2, 16384, true, false, false},
	"slash":         {"top", "", "a/../../x", "b", "c", 1, 2, 16384, true, false, false},
	"absolute-name": {"/etc/passwd", "", "", "", "", 1, 0, 16384, false, false, false},
	"utf8-name":     {"ok", "..", "a", "b", "c", 1, 2, 16384, true, true, false},
	"utf8-path":     {"top", "", "a", "..", "c", 1, 2, 16384, true, true, false},
	"backslash":     {"top", "", `..\x`, "b", "c", 1, 2, 16384, true, false, false},
	"drive":         {"C:evil", "", "a", "b", "c", 1, 2, 16384, true, false, false},
	"nul":           {"top", "", "a\x00", "b", "c", 1, 2, 16384, true, false, false},
	"case":          {"top", "", "A", "b", "a", 1, 2, 16384, true, false, false},
	"negative":      {"top", "", "a", "b", "c", -1, 2, 16384, true, false, false},
	"overflow":      {"top", "", "a", "b", "c", math.MaxInt64, 2, 16384, true, false, false},
	"v2":            {"v2", "", "a", "b", strings.Repeat("r", 32), 10, 2, 16384, false, false, true},
	"v2-short-root": {"v2", "", "a", "b", "short", 10, 2, 16384, false, false, true},
	"v2-pl-zero":    {"v2", "", "a", "b", "", 10, 2, 0, false, false, true},
	"v2-props-key":  {"v2", "", "", "b", "", 10, 2, 16384, false, false, true},
	"unicode":       {"日本", "", "é", "目录", "🎵", 1, 2, 16384, true, false, false},
	// The malicious cases of the fixtures, as this target builds them.
	"drive-backslash": {"top", "", `C:\Windows\x`, "b", "c", 1, 2, 16384, true, false, false},
	"drive-segment":   {"top", "", "c", "b", "C:|x", 1, 2, 16384, true, true, false},
	"unc":             {"top", "", `\\server\share`, "b", "c", 1, 2, 16384, true, false, false},
	"long-name":       {strings.Repeat("n", 300), "", "", "", "", 1, 0, 16384, false, false, false},
	"long-path":       {"top", "", "x", "y", strings.Repeat(strings.Repeat("d", 250)+"|", 20) + "f", 1, 2, 16384, true, true, false},
	"nul-utf8":        {"top", "", "a", "b", "c\x00", 1, 2, 16384, true, true, false},
	"duplicate":       {"top", "", "x", "y", "y", 1, 2, 16384, true, true, false},
	"file-and-folder": {"top", "", "a", "b", "c", 1, 2, 16384, true, false, false},
	"control":         {"top", "", "a\x1b[2J", "b", "c", 1, 2, 16384, true, true, false},
	"total-2p62":      {"top", "", "x", "y", "z", 1 << 62, 1 << 62, 16384, true, true, false},
	"pl-2p40":         {"big", "", "", "", "", 1, 0, 1 << 40, false, false, false},
	"pl-zero":         {"zero", "", "", "", "", 1, 0, 0, false, false, false},
	"pl-negative":     {"neg", "", "", "", "", 1, 0, -16384, false, false, false},
}

// FuzzCheckInfo builds an info from fuzzed names and checks that whatever CheckInfo accepts
// stays inside the download folder and maps every file to its own path.
func FuzzCheckInfo(f *testing.F) {
	for _, s := range checkInfoSeeds {
		f.Add(s.name, s.nameUtf8, s.a, s.b, s.c, s.la, s.lb, s.pl, s.isMulti, s.useUtf8, s.v2)
	}
	f.Fuzz(func(t *testing.T, name, nameUtf8, a, b, c string, la, lb, pl int64, isMulti, useUtf8, v2 bool) {
		info := metainfo.Info{Name: name, NameUtf8: nameUtf8, PieceLength: pl}
		switch {
		case v2:
			// c doubles as the pieces root.
			info.MetaVersion = 2
			info.FileTree = metainfo.FileTree{Dir: map[string]metainfo.FileTree{
				a: {File: metainfo.FileTreeFile{Length: la, PiecesRoot: c}},
				b: {Dir: map[string]metainfo.FileTree{a: {File: metainfo.FileTreeFile{Length: lb, PiecesRoot: c}}}},
			}}
		case isMulti:
			info.Files = []metainfo.FileInfo{
				{Length: la, Path: seg(a)},
				{Length: lb, Path: seg(a, b)},
				{Length: 1, Path: seg(b, c)},
				{Length: 1, Path: strings.Split(c, "|")},
			}
			if useUtf8 {
				info.Files[0].PathUtf8 = seg(c, a)
				info.Files[2].PathUtf8 = seg(b)
			}
		default:
			info.Length = la
		}
		err := storage.CheckInfo(&info)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error is not one line: %q", msg)
			}
			return
		}
		base := filepath.Join(string(filepath.Separator), "srv", "downloads")
		root := filepath.Join(base, info.BestName())
		if rel, err := filepath.Rel(base, root); err != nil || !strictlyInside(rel) {
			t.Fatalf("torrent name %q puts the content at %s, not inside %s", info.BestName(), root, base)
		}
		seen := map[string]string{}
		var total int64
		for _, fi := range info.UpvertedFiles() {
			if fi.Length < 0 {
				t.Fatalf("file %q has length %d", fi.BestPath(), fi.Length)
			}
			total += fi.Length
			if total < 0 {
				t.Fatal("sizes overflow")
			}
			p := filepath.Join(append([]string{root}, fi.BestPath()...)...)
			if info.IsDir() {
				if rel, err := filepath.Rel(root, p); err != nil || !strictlyInside(rel) {
					t.Fatalf("file %q lands at %s, not inside %s", fi.BestPath(), p, root)
				}
			} else if p != root {
				t.Fatalf("single file lands at %s, not %s", p, root)
			}
			key := strings.ToLower(p)
			if other, ok := seen[key]; ok {
				t.Fatalf("%s and %s are the same file on a case-insensitive disk", other, p)
			}
			seen[key] = p
		}
		for k := range seen {
			for d := filepath.Dir(k); len(d) > len(root); d = filepath.Dir(d) {
				if other, ok := seen[d]; ok {
					t.Fatalf("%s is a file and the folder of %s", other, k)
				}
			}
		}
	})
}

// strictlyInside says a filepath.Rel result names something below its base.
func strictlyInside(rel string) bool {
	return rel != "." && rel != ".." && !filepath.IsAbs(rel) &&
		!strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("SHOAL_WRITE_FIXTURES") != "1" {
		t.Skip("set SHOAL_WRITE_FIXTURES=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzCheckInfo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range checkInfoSeeds {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range []any{s.name, s.nameUtf8, s.a, s.b, s.c, s.la, s.lb, s.pl, s.isMulti, s.useUtf8, s.v2} {
			switch a := a.(type) {
			case string:
				fmt.Fprintf(&b, "string(%q)\n", a)
			case int64:
				fmt.Fprintf(&b, "int64(%d)\n", a)
			case bool:
				fmt.Fprintf(&b, "bool(%v)\n", a)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
