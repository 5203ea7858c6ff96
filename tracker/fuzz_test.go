package tracker_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/shoalp2p/shoal/tracker"
)

// FuzzAnnounce sends any query string to /announce, from an IPv4 or an IPv6 address: the
// tracker never panics and always answers status 200 with a bencoded dictionary, either a
// failure reason or an interval with peers. One server takes every input, so announces
// build up state as they would in a running tracker. Seeds: testdata/fuzz/FuzzAnnounce.
func FuzzAnnounce(f *testing.F) {
	srv, err := tracker.New(tracker.Config{MaxTorrents: 50, MaxPeers: 50})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ann{ih: ihA, id: hash20("p-", 1), port: 6881, left: 1, event: "started"}.query(), false)
	f.Fuzz(func(t *testing.T, query string, v6 bool) {
		r := httptest.NewRequest(http.MethodGet, "/announce", nil)
		r.URL.RawQuery = query
		r.RemoteAddr = "127.0.0.2:40000"
		if v6 {
			r.RemoteAddr = "[::1]:40000"
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d for %q", w.Code, query)
		}
		var resp map[string]any
		if err := bencode.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("answer %q to %q: %v", w.Body.Bytes(), query, err)
		}
		reason, failed := resp["failure reason"].(string)
		_, hasInterval := resp["interval"].(int64)
		_, hasPeers := resp["peers"]
		switch {
		case failed && (reason == "" || len(resp) != 1):
			t.Fatalf("failure answer %q to %q", w.Body.Bytes(), query)
		case !failed && (!hasInterval || !hasPeers):
			t.Fatalf("answer %q to %q: neither a failure nor peers", w.Body.Bytes(), query)
		}
	})
}
