package tracker

import (
	"bytes"
	"cmp"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"time"
)

// Stats is a snapshot of the tracker, as GET /stats shows it.
type Stats struct {
	Torrents  int   `json:"torrents"`
	Peers     int   `json:"peers"`
	Seeders   int   `json:"seeders"`
	Leechers  int   `json:"leechers"`
	Completed int64 `json:"completed"`
	// Announces and Scrapes count the requests answered; Failures those refused.
	Announces int64 `json:"announces"`
	Scrapes   int64 `json:"scrapes"`
	Failures  int64 `json:"failures"`
	// ConnsRefused counts the connections Listener closed at once: MaxConns were open.
	ConnsRefused    int64 `json:"conns_refused"`
	IntervalSeconds int64 `json:"interval_seconds"`
	UptimeSeconds   int64 `json:"uptime_seconds"`
	// Private says only the info-hashes of an allow list are served.
	Private bool `json:"private"`
	// PerTorrent lists every torrent tracked, most peers first.
	PerTorrent []TorrentStats `json:"per_torrent"`
}

// TorrentStats is one torrent in Stats.
type TorrentStats struct {
	InfoHash  string `json:"infohash"`
	Seeders   int    `json:"seeders"`
	Leechers  int    `json:"leechers"`
	Completed int64  `json:"completed"`
}

// Stats returns what the tracker holds now, expired peers left out.
func (s *Server) Stats() Stats {
	now := time.Now()
	st := Stats{
		Announces:       s.announces.Load(),
		Scrapes:         s.scrapes.Load(),
		Failures:        s.failures.Load(),
		ConnsRefused:    s.connsRefused.Load(),
		IntervalSeconds: int64(s.cfg.Interval / time.Second),
		UptimeSeconds:   int64(now.Sub(s.started) / time.Second),
		Private:         s.allow != nil,
	}
	s.mu.Lock()
	st.PerTorrent = make([]TorrentStats, 0, len(s.torrents))
	for ih, t := range s.torrents {
		t.expire(now)
		st.PerTorrent = append(st.PerTorrent, TorrentStats{
			InfoHash: ih.HexString(), Seeders: t.seeders, Leechers: t.leechers(), Completed: t.completed,
		})
	}
	s.mu.Unlock()
	st.Torrents = len(st.PerTorrent)
	for _, t := range st.PerTorrent {
		st.Seeders += t.Seeders
		st.Leechers += t.Leechers
		st.Completed += t.Completed
	}
	st.Peers = st.Seeders + st.Leechers
	slices.SortFunc(st.PerTorrent, func(a, b TorrentStats) int {
		return cmp.Or(cmp.Compare(b.Seeders+b.Leechers, a.Seeders+a.Leechers), cmp.Compare(a.InfoHash, b.InfoHash))
	})
	return st
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	b, err := json.MarshalIndent(s.Stats(), "", "  ")
	if err != nil { // Stats holds only numbers and strings
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"duration": func(sec int64) string { return (time.Duration(sec) * time.Second).String() },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>shoal tracker</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; }
td.n { text-align: right; }
code { font-size: 0.95em; }
</style></head>
<body>
<h1>shoal tracker</h1>
<p>{{.Torrents}} torrents, {{.Seeders}} seeders, {{.Leechers}} leechers, {{.Completed}} downloads completed.</p>
<p>{{.Announces}} announces and {{.Scrapes}} scrapes served, {{.Failures}} requests refused;
announce interval {{duration .IntervalSeconds}}, up {{duration .UptimeSeconds}}.
{{if .Private}}Private: only the torrents of the allow list are served.{{end}}</p>
<p>Announce URL: <code>/announce</code>; scrape: <code>/scrape</code>; these numbers as JSON: <a href="stats">/stats</a>.</p>
{{if .PerTorrent}}<table>
<tr><th>info-hash</th><th>seeders</th><th>leechers</th><th>completed</th></tr>
{{range .PerTorrent}}<tr><td><code>{{.InfoHash}}</code></td><td class="n">{{.Seeders}}</td><td class="n">{{.Leechers}}</td><td class="n">{{.Completed}}</td></tr>
{{end}}</table>{{else}}<p>No torrents yet.</p>{{end}}
</body>
</html>
`))

func (s *Server) serveStatus(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	if err := statusPage.Execute(&b, s.Stats()); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}
