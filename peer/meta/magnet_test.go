package meta_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer/meta"
)

const (
	ihHex    = "0123456789abcdef0123456789abcdef01234567"
	ihHexAlt = "fedcba9876543210fedcba9876543210fedcba98"
)

var ih = metainfo.NewHashFromHex(ihHex)

func TestParseMagnet(t *testing.T) {
	b32 := base32Of(ih)
	btmh := "urn:btmh:1220" + strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name     string
		uri      string
		wantErr  string // empty: must parse
		wantName string
		trackers [][]string
		peers    []string
	}{
		{name: "hex", uri: "magnet:?xt=urn:btih:" + ihHex},
		{name: "hex upper case", uri: "magnet:?xt=urn:btih:" + strings.ToUpper(ihHex)},
		{name: "base32", uri: "magnet:?xt=urn:btih:" + b32},
		{name: "base32 lower case", uri: "magnet:?xt=urn:btih:" + strings.ToLower(b32)},
		{name: "upper-case scheme and urn", uri: "MAGNET:?xt=URN:BTIH:" + ihHex},
		{name: "display name", uri: "magnet:?xt=urn:btih:" + ihHex + "&dn=My+Files%20%C3%A9", wantName: "My Files é"},
		{name: "display name with escapes", uri: "magnet:?xt=urn:btih:" + ihHex + "&dn=%1b%5b2Jx%0Ay%00%c2%9b%ff",
			wantName: "\uFFFD[2Jx\uFFFDy\uFFFD\uFFFD\uFFFD"},
		{name: "tracker with a control character", uri: "magnet:?xt=urn:btih:" + ihHex + "&tr=http://127.0.0.1/%1b%5b2J", wantErr: "tracker"},
		{name: "btih with NUL", uri: "magnet:?xt=urn:btih:" + ihHex[:39] + "%00", wantErr: "not hexadecimal"},
		{name: "btih 42 characters", uri: "magnet:?xt=urn:btih:" + ihHex + "00", wantErr: "42 characters"},
		{name: "x.pe cut short", uri: "magnet:?xt=urn:btih:" + ihHex + "&x.pe=[::1", wantErr: "x.pe"},
		{
			name:     "several trackers",
			uri:      "magnet:?xt=urn:btih:" + ihHex + "&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&tr=udp://127.0.0.1:6970&tr=https://127.0.0.1:443/a?x=1",
			trackers: [][]string{{"http://127.0.0.1:6969/announce"}, {"udp://127.0.0.1:6970"}, {"https://127.0.0.1:443/a?x=1"}},
		},
		{
			name:  "x.pe peers",
			uri:   "magnet:?xt=urn:btih:" + ihHex + "&x.pe=127.0.0.1:6881&x.pe=%5B::1%5D:6882&x.pe=[::ffff:127.0.0.2]:7",
			peers: []string{"127.0.0.1:6881", "[::1]:6882", "127.0.0.2:7"},
		},
		{name: "hybrid: btmh beside btih is ignored", uri: "magnet:?xt=" + btmh + "&xt=urn:btih:" + ihHex},
		{name: "other xt beside btih", uri: "magnet:?xt=urn:sha1:abc&xt=urn:btih:" + ihHex},
		{name: "missing xt", uri: "magnet:?dn=x", wantErr: "no xt=urn:btih:"},
		{name: "empty", uri: "magnet:", wantErr: "no xt=urn:btih:"},
		{name: "opaque form", uri: "magnet:xt=urn:btih:" + ihHex, wantErr: "no xt=urn:btih:"},
		{name: "two btih", uri: "magnet:?xt=urn:btih:" + ihHex + "&xt=urn:btih:" + ihHexAlt, wantErr: "more than one"},
		{name: "two equal btih", uri: "magnet:?xt=urn:btih:" + ihHex + "&xt=urn:btih:" + ihHex, wantErr: "more than one"},
		{name: "bad hex", uri: "magnet:?xt=urn:btih:" + strings.Repeat("z", 40), wantErr: "not hexadecimal"},
		{name: "bad base32", uri: "magnet:?xt=urn:btih:" + strings.Repeat("1", 32), wantErr: "not base32"},
		{name: "short hash", uri: "magnet:?xt=urn:btih:abcd", wantErr: "4 characters"},
		{name: "empty hash", uri: "magnet:?xt=urn:btih:", wantErr: "0 characters"},
		{name: "btmh only", uri: "magnet:?xt=" + btmh, wantErr: "only v1"},
		{name: "http scheme", uri: "http://127.0.0.1/?xt=urn:btih:" + ihHex, wantErr: "want magnet:?xt=urn:btih:"},
		{name: "no scheme", uri: "?xt=urn:btih:" + ihHex, wantErr: "want magnet:"},
		{name: "bad escape", uri: "magnet:?xt=urn:btih:" + ihHex + "&dn=%zz", wantErr: "bad magnet link"},
		{name: "tracker not a URL", uri: "magnet:?xt=urn:btih:" + ihHex + "&tr=nohost", wantErr: "tracker"},
		{name: "bad x.pe", uri: "magnet:?xt=urn:btih:" + ihHex + "&x.pe=example.com:80", wantErr: "x.pe"},
		{name: "x.pe port 0", uri: "magnet:?xt=urn:btih:" + ihHex + "&x.pe=127.0.0.1:0", wantErr: "port 0"},
		{name: "huge", uri: "magnet:?xt=urn:btih:" + ihHex + "&dn=" + strings.Repeat("a", 70<<10), wantErr: "over 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := meta.ParseMagnet(tc.uri)
			if tc.wantErr != "" {
				checkOneLine(t, err, "bad magnet link", tc.wantErr)
				if err != nil && len(err.Error()) > 300 {
					t.Errorf("error is %d bytes long", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.InfoHash != ih {
				t.Errorf("infohash %s, want %s", s.InfoHash.HexString(), ihHex)
			}
			if s.Name != tc.wantName {
				t.Errorf("name %q, want %q", s.Name, tc.wantName)
			}
			if !reflect.DeepEqual(s.Trackers, tc.trackers) {
				t.Errorf("trackers %q, want %q", s.Trackers, tc.trackers)
			}
			var peers []string
			for _, p := range s.Peers {
				peers = append(peers, p.String())
			}
			if !reflect.DeepEqual(peers, tc.peers) {
				t.Errorf("peers %q, want %q", peers, tc.peers)
			}
			if s.Info != nil || s.MetaInfo != nil {
				t.Error("a magnet link carries no metadata")
			}
		})
	}
}

func TestMagnetRoundTrip(t *testing.T) {
	for _, src := range []*meta.Source{
		{InfoHash: ih},
		{InfoHash: ih, Name: "plain"},
		{InfoHash: ih, Name: "spaces & ampersands = ?#% é/ü"},
		{InfoHash: ih, Name: "tiers", Trackers: [][]string{
			{"http://127.0.0.1:6969/announce", "udp://127.0.0.1:6970"},
			{"https://127.0.0.1:443/a?b=c&d=e"},
		}},
	} {
		uri := meta.Magnet(src)
		if !strings.HasPrefix(uri, "magnet:?xt=urn:btih:"+ihHex) {
			t.Errorf("magnet %q does not start with the btih", uri)
		}
		got, err := meta.ParseMagnet(uri)
		if err != nil {
			t.Fatalf("ParseMagnet(Magnet(...)) = %v for %q", err, uri)
		}
		if got.InfoHash != src.InfoHash || got.Name != src.Name {
			t.Errorf("%q parsed back as %s %q", uri, got.InfoHash.HexString(), got.Name)
		}
		var flat []string
		for _, tier := range src.Trackers {
			flat = append(flat, tier...)
		}
		var gotFlat []string
		for _, tier := range got.Trackers {
			gotFlat = append(gotFlat, tier...)
		}
		if !reflect.DeepEqual(gotFlat, flat) {
			t.Errorf("trackers %q, want %q", gotFlat, flat)
		}

		m, err := metainfo.ParseMagnetV2Uri(uri)
		if err != nil {
			t.Fatalf("anacrolix cannot parse %q: %v", uri, err)
		}
		if !m.InfoHash.Ok || m.InfoHash.Value != src.InfoHash || m.DisplayName != src.Name {
			t.Errorf("anacrolix reads %q as %v %q", uri, m.InfoHash, m.DisplayName)
		}
		if !reflect.DeepEqual(m.Trackers, flat) {
			t.Errorf("anacrolix trackers %q, want %q", m.Trackers, flat)
		}
	}
}

func TestParseInfoHash(t *testing.T) {
	for _, s := range []string{ihHex, strings.ToUpper(ihHex), base32Of(ih), strings.ToLower(base32Of(ih))} {
		h, err := meta.ParseInfoHash(s)
		if err != nil || h != ih {
			t.Errorf("ParseInfoHash(%q) = %s, %v", s, h.HexString(), err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "0 characters"},
		{"abc", "3 characters"},
		{ihHex + "0", "41 characters"},
		{ihHex[:39] + "g", "not hexadecimal"},
		{ihHex[:38] + " 1", "not hexadecimal"},
		{"0x" + ihHex[:38], "not hexadecimal"},
		{strings.Repeat("8", 32), "not base32"},
		{base32Of(ih)[:30] + "==", "not base32"},
		{strings.Repeat("x", 1000), "1000 characters"},
	} {
		_, err := meta.ParseInfoHash(tc.in)
		checkOneLine(t, err, "info-hash", tc.want)
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("error for a %d-byte input is %d bytes long", len(tc.in), len(err.Error()))
		}
	}
}

func TestParsePeerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:6881":        "127.0.0.1:6881",
		"[::1]:1":               "[::1]:1",
		"[::ffff:10.0.0.1]:999": "10.0.0.1:999",
	} {
		ap, err := meta.ParsePeerAddr(in)
		if err != nil || ap != netip.MustParseAddrPort(want) {
			t.Errorf("ParsePeerAddr(%q) = %v, %v; want %s", in, ap, err, want)
		}
	}
	for in, want := range map[string]string{
		"127.0.0.1":        "IP:PORT",
		"localhost:6881":   "IP:PORT",
		"127.0.0.1:0":      "port 0",
		"127.0.0.1:65536":  "IP:PORT",
		"::1:6881":         "IP:PORT",
		"":                 "IP:PORT",
		"127.0.0.1:-1":     "IP:PORT",
		"[fe80::1%eth0]:1": "",
	} {
		_, err := meta.ParsePeerAddr(in)
		if want == "" {
			continue // zoned addresses: either answer is fine, as long as it does not panic
		}
		checkOneLine(t, err, want)
	}
}
