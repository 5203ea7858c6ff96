package tracker_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/bencode"
	"go.uber.org/goleak"

	"github.com/shoalp2p/shoal/tracker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Started once per process by the torrent library's dependencies (the 20-node
		// test), never stopped.
		goleak.IgnoreTopFunction("github.com/anacrolix/torrent/internal/alloclim.(*Limiter).run"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/anacrolix/missinggo/v2/panicif.init"),
	)
}

func newServer(t testing.TB, cfg tracker.Config) *tracker.Server {
	t.Helper()
	s, err := tracker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// esc %-escapes every byte of s, as careful clients do for binary values.
func esc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// hash20 is a 20-byte string made from a small number, for info-hashes and peer ids.
func hash20(prefix string, n int) string {
	s := fmt.Sprintf("%s%d", prefix, n)
	return s + strings.Repeat("\x00", 20-len(s))
}

// ann is an announce; query renders it as a raw query string.
type ann struct {
	ih, id string
	port   int
	left   int64
	event  string
	extra  string // appended as is: "&numwant=3"
}

func (a ann) query() string {
	q := fmt.Sprintf("info_hash=%s&peer_id=%s&port=%d&uploaded=0&downloaded=0&left=%d",
		esc(a.ih), esc(a.id), a.port, a.left)
	if a.event != "" {
		q += "&event=" + a.event
	}
	return q + a.extra
}

// get serves one GET request from the remote address from and returns the body. Every
// tracker answer must have status 200.
func get(t testing.TB, h http.Handler, path, rawQuery, from string) []byte {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.URL.RawQuery = rawQuery
	r.RemoteAddr = from
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s?%s: status %d, want 200: %q", path, rawQuery, w.Code, body)
	}
	return body
}

// annResp is a decoded announce answer; rawPeers is "peers" as it came (string or list).
type annResp struct {
	Failure     string        `bencode:"failure reason"`
	Interval    int64         `bencode:"interval"`
	MinInterval int64         `bencode:"min interval"`
	Complete    int           `bencode:"complete"`
	Incomplete  int           `bencode:"incomplete"`
	RawPeers    bencode.Bytes `bencode:"peers"`
	Peers6      string        `bencode:"peers6"`
}

type peerDict struct {
	ID   string `bencode:"peer id"`
	IP   string `bencode:"ip"`
	Port int    `bencode:"port"`
}

func decodeAnnounce(t testing.TB, body []byte) annResp {
	t.Helper()
	var r annResp
	if err := bencode.Unmarshal(body, &r); err != nil {
		t.Fatalf("announce answer %q: %v", body, err)
	}
	return r
}

// announce sends a and fails the test unless the tracker accepts it.
func announce(t testing.TB, h http.Handler, a ann, from string) annResp {
	t.Helper()
	r := decodeAnnounce(t, get(t, h, "/announce", a.query(), from))
	if r.Failure != "" {
		t.Fatalf("announce %+v from %s: failure %q", a, from, r.Failure)
	}
	return r
}

// compactPeers decodes "peers" of a compact answer.
func (r annResp) compactPeers(t testing.TB) []netip.AddrPort {
	t.Helper()
	var s string
	if err := bencode.Unmarshal(r.RawPeers, &s); err != nil {
		t.Fatalf("peers %q is not a string: %v", r.RawPeers, err)
	}
	return splitCompact(t, s, 4)
}

// dictPeers decodes "peers" of a non-compact answer.
func (r annResp) dictPeers(t testing.TB) []peerDict {
	t.Helper()
	var l []peerDict
	if err := bencode.Unmarshal(r.RawPeers, &l); err != nil {
		t.Fatalf("peers %q is not a list of dictionaries: %v", r.RawPeers, err)
	}
	return l
}

func splitCompact(t testing.TB, s string, ipLen int) []netip.AddrPort {
	t.Helper()
	n := ipLen + 2
	if len(s)%n != 0 {
		t.Fatalf("compact peers of %d bytes: not a multiple of %d", len(s), n)
	}
	var out []netip.AddrPort
	for b := []byte(s); len(b) > 0; b = b[n:] {
		ip, _ := netip.AddrFromSlice(b[:ipLen])
		out = append(out, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(b[ipLen:n])))
	}
	return out
}

// failure decodes an answer that must be a failure and returns its reason.
func failure(t testing.TB, body []byte) string {
	t.Helper()
	var r map[string]any
	if err := bencode.Unmarshal(body, &r); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	reason, _ := r["failure reason"].(string)
	if reason == "" || len(r) != 1 {
		t.Fatalf("answer %q: want only a failure reason", body)
	}
	return reason
}

type scrapeFile struct {
	Complete   int   `bencode:"complete"`
	Incomplete int   `bencode:"incomplete"`
	Downloaded int64 `bencode:"downloaded"`
}

func scrape(t testing.TB, h http.Handler, from string, ihs ...string) map[string]scrapeFile {
	t.Helper()
	var q []string
	for _, ih := range ihs {
		q = append(q, "info_hash="+esc(ih))
	}
	body := get(t, h, "/scrape", strings.Join(q, "&"), from)
	var r struct {
		Failure string                `bencode:"failure reason"`
		Files   map[string]scrapeFile `bencode:"files"`
	}
	if err := bencode.Unmarshal(body, &r); err != nil {
		t.Fatalf("scrape answer %q: %v", body, err)
	}
	if r.Failure != "" || !bytes.HasPrefix(body, []byte("d5:files")) {
		t.Fatalf("scrape: %q", body)
	}
	return r.Files
}
