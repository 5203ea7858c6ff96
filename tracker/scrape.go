package tracker

import (
	"net/http"
	"strconv"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// scrapeResponse is the bencoded answer to a scrape (BEP 48), keyed by raw info-hash.
type scrapeResponse struct {
	Files map[string]scrapeFile `bencode:"files"`
}

type scrapeFile struct {
	Complete   int   `bencode:"complete"`
	Incomplete int   `bencode:"incomplete"`
	Downloaded int64 `bencode:"downloaded"`
}

func (s *Server) serveScrape(w http.ResponseWriter, r *http.Request) {
	q, reason := query(r)
	if reason != "" {
		s.fail(w, r, reason)
		return
	}
	raw := q["info_hash"]
	if len(raw) > MaxScrapeHashes {
		s.fail(w, r, "too many info_hash: at most "+strconv.Itoa(MaxScrapeHashes)+" in one scrape")
		return
	}
	hashes := make([]metainfo.Hash, 0, len(raw))
	for _, v := range raw {
		if len(v) != 20 {
			s.fail(w, r, "invalid info_hash: want 20 bytes, got "+strconv.Itoa(len(v)))
			return
		}
		var ih metainfo.Hash
		copy(ih[:], v)
		if !s.allowed(ih) {
			s.fail(w, r, reasonNotAllowed)
			return
		}
		hashes = append(hashes, ih)
	}
	s.scrapes.Add(1)
	writeBencode(w, s.scrape(hashes, time.Now()))
}

// scrape counts the peers of the given torrents, or of every torrent (up to MaxScrapeAll)
// when none is given. A torrent the tracker does not know has zero counts.
func (s *Server) scrape(hashes []metainfo.Hash, now time.Time) scrapeResponse {
	resp := scrapeResponse{Files: make(map[string]scrapeFile)}
	s.mu.Lock()
	defer s.mu.Unlock()
	file := func(t *swarm) scrapeFile {
		t.expire(now)
		return scrapeFile{Complete: t.seeders, Incomplete: t.leechers(), Downloaded: t.completed}
	}
	if len(hashes) == 0 {
		for ih, t := range s.torrents {
			if len(resp.Files) == MaxScrapeAll {
				break
			}
			resp.Files[string(ih[:])] = file(t)
		}
		return resp
	}
	for _, ih := range hashes {
		var f scrapeFile
		if t := s.torrents[ih]; t != nil {
			f = file(t)
		}
		resp.Files[string(ih[:])] = f
	}
	return resp
}
