package peer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Event is something a node reports while it works. Each kind marshals to one JSON object
// whose "event" field names it; the field names are part of shoal's interface (DESIGN.md).
type Event interface{ kind() string }

// Start: the torrent's metadata is known and its storage is open.
type Start struct {
	Event    string `json:"event"`
	InfoHash string `json:"infohash"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Pieces   int    `json:"pieces"`
	Listen   string `json:"listen"`
	Magnet   string `json:"magnet"`
}

// Verify: data already on disk is being hashed against the torrent.
type Verify struct {
	Event   string `json:"event"`
	Checked int64  `json:"checked"`
	Size    int64  `json:"size"`
}

// PeerFound: a connection to a new peer, with where its address came from.
type PeerFound struct {
	Event  string `json:"event"`
	Addr   string `json:"addr"`
	Source string `json:"source"`
	// At is when the connection was made; the event is emitted up to a progress interval
	// later.
	At time.Time `json:"-"`
}

// Progress is sent about twice a second.
type Progress struct {
	Event     string `json:"event"`
	Completed int64  `json:"completed"`
	Size      int64  `json:"size"`
	Peers     int    `json:"peers"`
	DownRate  int64  `json:"down_rate"` // payload bytes per second
	UpRate    int64  `json:"up_rate"`
	Uploaded  int64  `json:"uploaded"` // payload sent in this run
	// Downloaded is the payload read from peers in this run: pieces already on disk and
	// verified are not fetched again, so a resumed run reads only what was missing.
	Downloaded int64 `json:"downloaded"`
}

// Complete: every piece is on disk and verified.
type Complete struct {
	Event      string  `json:"event"`
	InfoHash   string  `json:"infohash"`
	Size       int64   `json:"size"`
	Seconds    float64 `json:"seconds"`
	Downloaded int64   `json:"downloaded"` // payload read from peers in this run
	Uploaded   int64   `json:"uploaded"`
	// PiecesFailed counts pieces from peers that failed their hash check in this run (each
	// was fetched again); PeersBanned the IPs the node banned for it.
	PiecesFailed int64 `json:"pieces_failed,omitempty"`
	PeersBanned  int   `json:"peers_banned,omitempty"`
	// Discovery is what finding peers has cost so far, by adapter.
	Discovery map[string]SearchStats `json:"discovery,omitempty"`
}

// Stop: the node stopped working on the torrent, and why (seed-time, seed-ratio, interrupted).
type Stop struct {
	Event    string `json:"event"`
	Reason   string `json:"reason"`
	Uploaded int64  `json:"uploaded"`
}

// Error: something went wrong; the command exits non-zero after it.
type Error struct {
	Event   string `json:"event"`
	Message string `json:"message"`
}

func (Start) kind() string     { return "start" }
func (Verify) kind() string    { return "verify" }
func (PeerFound) kind() string { return "peer" }
func (Progress) kind() string  { return "progress" }
func (Complete) kind() string  { return "complete" }
func (Stop) kind() string      { return "stop" }
func (Error) kind() string     { return "error" }

// Kind returns the event's name, as in its "event" field.
func Kind(e Event) string { return e.kind() }

// PostEvent POSTs one event as JSON to url (the --on-complete webhook). It gives up after
// ten seconds; a status outside 2xx is an error.
func PostEvent(ctx context.Context, url string, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s answered %s", url, resp.Status)
	}
	return nil
}
