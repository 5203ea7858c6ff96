package meta_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/storage"
)

// Seeds beside the committed corpus in testdata/fuzz/ (which holds every small fixture too).
var magnetSeeds = map[string]string{
	"hex":          "magnet:?xt=urn:btih:" + ihHex,
	"base32":       "magnet:?xt=urn:btih:" + base32Of(ih),
	"full":         "magnet:?xt=urn:btih:" + ihHex + "&dn=a+b%20c&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&tr=udp://127.0.0.1:1&x.pe=127.0.0.1:6881&x.pe=[::1]:2",
	"upper":        "MAGNET:?XT=URN:BTIH:" + strings.ToUpper(ihHex),
	"two-btih":     "magnet:?xt=urn:btih:" + ihHex + "&xt=urn:btih:" + ihHexAlt,
	"btmh":         "magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32),
	"hybrid":       "magnet:?xt=urn:btmh:1220" + strings.Repeat("ab", 32) + "&xt=urn:btih:" + ihHex,
	"bad-escape":   "magnet:?xt=urn:btih:" + ihHex + "&dn=%",
	"padded-b32":   "magnet:?xt=urn:btih:" + base32Of(ih)[:30] + "==",
	"no-xt":        "magnet:?dn=x",
	"http":         "http://127.0.0.1/?xt=urn:btih:" + ihHex,
	"bad-tracker":  "magnet:?xt=urn:btih:" + ihHex + "&tr=%00",
	"peer-zoned":   "magnet:?xt=urn:btih:" + ihHex + "&x.pe=[fe80::1%25lo]:1",
	"semicolon":    "magnet:?xt=urn:btih:" + ihHex + ";dn=x",
	"fragment":     "magnet:?xt=urn:btih:" + ihHex + "#dn=x",
	"empty-values": "magnet:?xt=&dn=&tr=&x.pe=",
	// Hostile links.
	"huge":            "magnet:?xt=urn:btih:" + ihHex + "&dn=" + strings.Repeat("a", 65<<10),
	"bad-btih-hex":    "magnet:?xt=urn:btih:" + strings.Repeat("z", 40),
	"bad-btih-base32": "magnet:?xt=urn:btih:" + strings.Repeat("1", 32),
	"bad-btih-length": "magnet:?xt=urn:btih:" + ihHex + "00",
	"btih-nul":        "magnet:?xt=urn:btih:" + ihHex[:39] + "%00",
	"btih-unicode":    "magnet:?xt=urn:btih:" + strings.Repeat("ſ", 20),
	"dn-escape":       "magnet:?xt=urn:btih:" + ihHex + "&dn=%1b%5b2J%1b%5b31mred%0anewline%00nul",
	"dn-not-utf8":     "magnet:?xt=urn:btih:" + ihHex + "&dn=%ff%fe%c3",
	"tr-escape":       "magnet:?xt=urn:btih:" + ihHex + "&tr=http://127.0.0.1/%1b%5b2J",
	"tr-control":      "magnet:?xt=urn:btih:" + ihHex + "&tr=http%3A%2F%2F127.0.0.1%0A%2Fa",
	"many-trackers":   "magnet:?xt=urn:btih:" + ihHex + strings.Repeat("&tr=udp://127.0.0.1:1", 2000),
	"many-peers":      "magnet:?xt=urn:btih:" + ihHex + strings.Repeat("&x.pe=127.0.0.1:1", 2000),
	"x.pe-garbage":    "magnet:?xt=urn:btih:" + ihHex + "&x.pe=[::1",
	"double-escape":   "magnet:?xt=urn%3Abtih%3A" + ihHex,
	"no-query":        "magnet:" + ihHex,
	"opaque":          "magnet:xt=urn:btih:" + ihHex,
}

var infoHashSeeds = map[string]string{
	"hex":        ihHex,
	"hex-upper":  strings.ToUpper(ihHex),
	"base32":     base32Of(ih),
	"base32-low": strings.ToLower(base32Of(ih)),
	"padded":     base32Of(ih)[:30] + "==",
	"newline":    base32Of(ih)[:31] + "\n",
	"bad-hex":    strings.Repeat("g", 40),
	"empty":      "",
	"long":       strings.Repeat("f", 41),
	"unicode":    strings.Repeat("ſ", 16),
}

func FuzzParseTorrent(f *testing.F) {
	f.Add([]byte("d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"))
	f.Add([]byte("d4:infod5:filesld6:lengthi1e4:pathl1:a1:beee4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"))
	f.Add([]byte("d4:infod12:meta versioni2e9:file treed1:ad0:d6:lengthi1e11:pieces root32:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaeee4:name1:x12:piece lengthi16384eee"))
	f.Add([]byte("d4:infoi1ee"))
	f.Add([]byte("d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := meta.ParseTorrent(b)
		if err != nil {
			if s != nil {
				t.Fatal("source returned beside an error")
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || msg == "" {
				t.Fatalf("error is not one line: %q", msg)
			}
			return
		}
		if s.Info == nil || s.MetaInfo == nil {
			t.Fatal("a parsed .torrent has no info")
		}
		if s.InfoHash != metainfo.HashBytes(s.MetaInfo.InfoBytes) {
			t.Fatal("infohash is not the hash of the info bytes")
		}
		if err := meta.CheckInfo(s.Info); err != nil {
			t.Fatalf("accepted info fails CheckInfo: %v", err)
		}
		if err := storage.CheckInfo(s.Info); err != nil {
			t.Fatalf("accepted info fails storage.CheckInfo: %v", err)
		}
		// The torrent library makes NumPieces pieces and reads each one's hash from Pieces.
		if n := s.Info.NumPieces(); n <= 0 || n != len(s.Info.Pieces)/20 {
			t.Fatalf("info has %d pieces but %d v1 hashes", n, len(s.Info.Pieces)/20)
		}
		for i := range s.Info.NumPieces() {
			if l := s.Info.Piece(i).Length(); l <= 0 || l > s.Info.PieceLength {
				t.Fatalf("piece %d is %d bytes long", i, l)
			}
		}
		_ = meta.Magnet(s)
		for _, tier := range s.Trackers {
			for _, u := range tier {
				if meta.Printable(u) != u {
					t.Fatalf("tracker %q would drive the terminal", u)
				}
			}
		}

		// Written out again, it reads back as the same torrent.
		var buf bytes.Buffer
		if err := s.MetaInfo.Write(&buf); err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		s2, err := meta.ParseTorrent(buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoded torrent refused: %v", err)
		}
		if s2.InfoHash != s.InfoHash || s2.Name != s.Name || !bytes.Equal(s2.Info.Pieces, s.Info.Pieces) {
			t.Fatalf("re-encoded torrent differs: %s %q, was %s %q", s2.InfoHash.HexString(), s2.Name, s.InfoHash.HexString(), s.Name)
		}
		if !reflect.DeepEqual(s2.Trackers, s.Trackers) {
			t.Fatalf("trackers %q became %q", s.Trackers, s2.Trackers)
		}
	})
}

func FuzzParseMagnet(f *testing.F) {
	for _, s := range magnetSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		s, err := meta.ParseMagnet(uri)
		if err != nil {
			if s != nil {
				t.Fatal("source returned beside an error")
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error is not one line: %q", msg)
			}
			return
		}
		if s.Info != nil || s.MetaInfo != nil {
			t.Fatal("metadata from a magnet link")
		}
		if meta.Printable(s.Name) != s.Name {
			t.Fatalf("display name %q would drive the terminal", s.Name)
		}
		out := meta.Magnet(s)
		if len(out) > 64<<10 {
			// Escaping can make the link longer than the input; ParseMagnet's cap then
			// refuses it, which is fine for links this long.
			return
		}
		s2, err := meta.ParseMagnet(out)
		if err != nil {
			t.Fatalf("Magnet(ParseMagnet(%q)) = %q does not parse: %v", uri, out, err)
		}
		if s2.InfoHash != s.InfoHash || s2.Name != s.Name {
			t.Fatalf("%q parsed back as %s %q, want %s %q", out, s2.InfoHash.HexString(), s2.Name, s.InfoHash.HexString(), s.Name)
		}
		if flat(s2.Trackers) != flat(s.Trackers) {
			t.Fatalf("trackers %q became %q", s.Trackers, s2.Trackers)
		}
		m, err := metainfo.ParseMagnetV2Uri(out)
		if err != nil {
			t.Fatalf("anacrolix cannot parse %q: %v", out, err)
		}
		if !m.InfoHash.Ok || m.InfoHash.Value != s.InfoHash {
			t.Fatalf("anacrolix reads %q as %v", out, m.InfoHash)
		}
	})
}

func flat(tiers [][]string) string {
	var all []string
	for _, t := range tiers {
		all = append(all, t...)
	}
	return strings.Join(all, "\x00")
}

func FuzzParseInfoHash(f *testing.F) {
	for _, s := range infoHashSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := meta.ParseInfoHash(s)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || len(msg) > 400 {
				t.Fatalf("error is not one short line: %q", msg)
			}
			return
		}
		switch len(s) {
		case 40:
			if h.HexString() != strings.ToLower(s) {
				t.Fatalf("%q read as %s", s, h.HexString())
			}
		case 32:
			if base32Of(h) != strings.ToUpper(s) {
				t.Fatalf("%q read as %s", s, base32Of(h))
			}
		default:
			t.Fatalf("accepted a %d-character info-hash", len(s))
		}
		// The torrent library reads the same hash from a magnet link.
		m, err := metainfo.ParseMagnetV2Uri("magnet:?xt=urn:btih:" + strings.ToUpper(s))
		if err != nil || m.InfoHash.Value != h {
			t.Fatalf("anacrolix reads %q as %v, %v", s, m.InfoHash, err)
		}
	})
}
