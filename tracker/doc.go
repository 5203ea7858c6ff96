// Package tracker is shoal's HTTP BitTorrent tracker: the meeting point of hybrid mode. A
// Server is an http.Handler that keeps, in memory, which peers announced which torrents,
// and hands each peer a random sample of the others.
//
//	srv, err := tracker.New(tracker.Config{Interval: 30 * time.Minute})
//	go srv.Run(ctx)  // drops expired peers in the background; optional
//	l, err := net.Listen("tcp", "127.0.0.1:6969")
//	srv.HTTPServer(nil).Serve(srv.Listener(l))  // timeouts, size and connection limits
//
// # Endpoints
//
//   - GET /announce (BEP 3): info_hash and peer_id (20 raw bytes each, %-escaped), port
//     (1..65535), uploaded, downloaded and left (decimal, 0 or more; missing counts as 0,
//     and a peer without left is a leecher), event (started, completed, stopped, paused or
//     empty), numwant (default 50, at most 200; a negative one means the default), compact
//     (1, the default, or 0) and no_peer_id. The answer holds interval, min interval,
//     complete and incomplete (seeders and leechers) and the peers: with compact=1 (BEP 23)
//     a binary string, 6 bytes a peer, in "peers" for a client that came over IPv4 and 18
//     bytes a peer in "peers6" (BEP 7) for one that came over IPv6; with compact=0 a list of
//     dictionaries {"peer id", "ip", "port"}. A peer gets peers of its own address family,
//     never itself, and a seeder gets only leechers.
//   - GET /scrape (BEP 48): one or more info_hash (at most 100), or none for every torrent
//     tracked (at most 1,000). The answer is {"files": {info_hash: {"complete",
//     "incomplete", "downloaded"}}}, where downloaded counts completed events.
//   - GET / is a status page in HTML; GET /stats is the same as JSON (see Stats).
//
// Every announce or scrape error is answered with status 200 and a bencoded dictionary
// {"failure reason": "..."}, which is what clients show their users; a bad request never
// gets a 4xx or 5xx status from the tracker. That includes a request that is not a GET and
// a query string over MaxQueryBytes (8 KiB). (A request line and headers over
// MaxHeaderBytes, 32 KiB, are refused before the tracker sees them, by net/http: status 431.)
//
// # The peer's address
//
// A peer is listed at the address its request came from (the connection's remote address)
// and the port it announced. The ip, ipv4 and ipv6 parameters are ignored: trusting them
// would let anyone list someone else's address. So the tracker must be reached directly,
// not through a reverse proxy (all peers would then have the proxy's address), and a node
// that listens on 127.0.0.2 must also send its announces from 127.0.0.2 (shoal's nodes do).
//
// # Expiry and bounds
//
// A peer that has not announced for two intervals is dropped. Expiry is lazy (a torrent's
// peers are checked when it is announced or scraped, at a cost only when one is due) and
// Run also sweeps every torrent periodically, so that the torrents nobody asks about are
// forgotten too: a torrent with no peers left is dropped two intervals after its last
// announce, or at once when the table is full and a new torrent needs its place.
//
// The table is bounded: at most Config.MaxTorrents torrents (default 1,000) and
// Config.MaxPeers peers per torrent (default 2,000), so at most two million peers (a few
// hundred bytes each). A full table answers a failure reason to newcomers; peers already
// listed keep announcing.
//
// HTTPServer and Listener bound what connections cost: a client has HeaderTimeout (default
// 10 s) to send its request line and headers however slowly it trickles them (slowloris),
// 15 s to send its whole request and to read the answer, a kept-alive connection is closed
// after a minute without a request, and at most MaxConns connections (default 8,192) are
// open at once: those past it are closed as soon as they are accepted (Stats.ConnsRefused).
//
// With Config.Allow, only the listed info-hashes are served (a private tracker); announces
// and scrapes of others get the failure reason "torrent not allowed on this tracker".
//
// # Why not anacrolix/torrent's tracker server
//
// anacrolix/torrent ships tracker building blocks (tracker/server, tracker/http/server),
// but they serve announces only: no scrape, no peer expiry and no peer store (the caller
// writes it), always compact peers, and they pull in OpenTelemetry tracing. What is missing
// is most of a tracker, so this package implements the protocol itself and uses only
// anacrolix's bencode codec.
//
// A Server is safe for concurrent use: one mutex guards the table, counters are atomic.
package tracker
