package peer

import (
	"context"
	"net/netip"

	"github.com/anacrolix/torrent/metainfo"
)

// Discovery finds the addresses of peers that hold a torrent, and tells others that this node
// does. Adapters (peer/dht, peer/announce, later peer/flood) implement it; the node never
// knows how peers are found. Implementations are safe for concurrent use.
type Discovery interface {
	// Name is the adapter's name, as in the "source" of a peer event: dht, tracker, flood.
	Name() string
	// Announce tells the network that this node serves a.InfoHash on TCP port a.Port.
	Announce(ctx context.Context, a Announcement) error
	// Lookup searches for peers of ih. The channel yields addresses as they are found and is
	// closed when the search ends or ctx is done.
	Lookup(ctx context.Context, ih metainfo.Hash) (<-chan netip.AddrPort, error)
	// Stats is what searching has cost so far.
	Stats() SearchStats
	// Close stops the adapter and waits for its goroutines.
	Close() error
}

// Announcement is what a node says about one torrent. Trackers use every field; a DHT only
// InfoHash and Port.
type Announcement struct {
	InfoHash metainfo.Hash
	Port     int   // BitTorrent TCP port
	Left     int64 // bytes still wanted: 0 for a seeder, -1 while a magnet's metadata is unknown
	// Uploaded and Downloaded are payload bytes in this run.
	Uploaded, Downloaded int64
	Event                AnnounceEvent
	// Trackers is the torrent's own announce list (BEP 12 tiers), for tracker adapters.
	Trackers [][]string
}

// AnnounceEvent is the tracker event of an announcement (BEP 3).
type AnnounceEvent string

// Announce events.
const (
	EventNone      AnnounceEvent = ""
	EventStarted   AnnounceEvent = "started"
	EventCompleted AnnounceEvent = "completed"
	EventStopped   AnnounceEvent = "stopped"
)

// SearchStats counts the cost of discovery: what compare reports.
type SearchStats struct {
	Announces int64 `json:"announces"`
	Lookups   int64 `json:"lookups"`
	// Messages sent and received on the discovery network (DHT queries and replies, tracker
	// requests and responses, overlay frames).
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
	// NodesContacted counts distinct nodes (or trackers) a search reached.
	NodesContacted int64 `json:"nodes_contacted"`
	PeersFound     int64 `json:"peers_found"`
}

// Add adds o's counts to s: the cost of several searches, or of several nodes.
func (s *SearchStats) Add(o SearchStats) {
	s.Announces += o.Announces
	s.Lookups += o.Lookups
	s.Sent += o.Sent
	s.Received += o.Received
	s.NodesContacted += o.NodesContacted
	s.PeersFound += o.PeersFound
}
