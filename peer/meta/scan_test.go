package meta

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

func TestCountFiles(t *testing.T) {
	files := func(n int) string {
		var b strings.Builder
		b.WriteString("5:filesl")
		for i := range n {
			fmt.Fprintf(&b, "d6:lengthi%de4:pathl1:x2:y%dee", i, i%10)
		}
		return b.String() + "e"
	}
	for _, c := range []struct {
		info  string
		limit int
		want  int
	}{
		{"d" + files(3) + "4:name1:ae", 10, 3},
		{"d6:lengthi5e" + "4:name1:a" + "e", 10, 0},
		{"d4:name1:a" + files(0) + "e", 10, 0},
		{"d4:name1:a6:piecesli1ed1:xl1:yeee1:zi0e" + files(5) + "e", 10, 5}, // skips nested values before it
		{"d" + files(2) + files(5) + files(1) + "e", 10, 5},                 // the key again: the longest list
		{"d" + files(50) + "e", 3, 4},                                       // stops once past the limit
		{"d5:filesi3ee", 10, 0},                                             // not a list
		{"d" + files(3)[:20], 10, 0},                                        // truncated
		{"d5:filesl99999:xee", 10, 0},                                       // string runs past the end
		{"d5:filesl-1:xee", 10, 0},
		{"d5:filesli1ei2ei3e", 10, 3}, // list never closed: counted as far as it goes
		{"d5:filesli1ei2ei3eee", 10, 3},
		{"l5:filese", 10, 0},
		{"", 10, 0},
		{"d9999999999999999999999:x", 10, 0}, // length overflows
	} {
		if got := countFiles([]byte(c.info), c.limit); got != c.want {
			t.Errorf("countFiles(%.60q, %d) = %d, want %d", c.info, c.limit, got, c.want)
		}
	}
	for _, c := range []struct {
		torrent string
		want    int
	}{
		{"d8:announce3:url4:infod" + files(3) + "ee", 3},
		{"d4:infod" + files(2) + "e4:infod" + files(4) + "ee", 4}, // repeated: the most
		{"d4:infoi1e1:xd" + files(4) + "ee", 0},                   // files only under info
		{"d4:infod" + files(3), 3},                                // truncated: counted as far as it goes
		{"l4:infoe", 0},
	} {
		if got := countTorrentFiles([]byte(c.torrent), 10); got != c.want {
			t.Errorf("countTorrentFiles(%.60q) = %d, want %d", c.torrent, got, c.want)
		}
	}
	// It agrees with the decoder on a real info dictionary.
	info := metainfo.Info{Name: "x", PieceLength: 16384}
	for i := range 100 {
		info.Files = append(info.Files, metainfo.FileInfo{Length: int64(i), Path: []string{"d", fmt.Sprint(i)}, PathUtf8: []string{"é"}})
	}
	b, err := bencode.Marshal(&info)
	if err != nil {
		t.Fatal(err)
	}
	if got := countFiles(b, 1000); got != 100 {
		t.Errorf("countFiles = %d, want 100", got)
	}
}

// FuzzCountFiles checks the files count against the decoder on any input: where the decoder
// reads a files list, the count is at least its length (up to the limit).
func FuzzCountFiles(f *testing.F) {
	f.Add([]byte("d5:filesld6:lengthi1e4:pathl1:aeed6:lengthi2e4:pathl1:beee4:name1:xe"))
	f.Add([]byte("d4:name1:a6:piecesli1ed1:xl1:yeee5:filesli1ei2ee1:zi0ee"))
	f.Add([]byte("d5:filesl99999:xee"))
	f.Add([]byte("d5:filesli1ei2ei3e"))
	f.Add([]byte("d5:filesle5:filesli1eee"))
	f.Add([]byte("d4:infod5:filesli1ei2eee4:infod5:filesleee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 8
		// As a whole .torrent: its info's files are never counted short either.
		var mi struct {
			Info struct {
				Files []bencode.Bytes `bencode:"files"`
			} `bencode:"info"`
		}
		if bencode.Unmarshal(b, &mi) == nil {
			if got, want := countTorrentFiles(b, limit), min(len(mi.Info.Files), limit+1); got < want {
				t.Fatalf("countTorrentFiles = %d, the decoder reads %d files", got, len(mi.Info.Files))
			}
		}
		got := countFiles(b, limit)
		var v struct {
			Files []bencode.Bytes `bencode:"files"`
		}
		if bencode.Unmarshal(b, &v) != nil || b[0] != 'd' {
			return
		}
		// Never fewer (a list the count misses would be decoded whole); more only when the
		// key is there twice.
		if want := min(len(v.Files), limit+1); got < want || (got > want && bytes.Count(b, []byte("5:files")) < 2) {
			t.Fatalf("countFiles = %d, the decoder reads %d files", got, len(v.Files))
		}
	})
}
