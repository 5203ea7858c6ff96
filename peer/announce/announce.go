// Package announce finds peers through BitTorrent trackers, HTTP (BEP 3, BEP 23) and UDP
// (BEP 15): a peer.Discovery adapter. It announces to the trackers given on the command line
// and to the torrent's own announce list, tier by tier as BEP 12 says, and hands back the
// peers the tracker returns.
package announce

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker"
	trHttp "github.com/anacrolix/torrent/tracker/http"

	"github.com/shoalp2p/shoal/peer"
)

// Config is how the adapter reaches trackers.
type Config struct {
	// URLs are trackers to use for every torrent, before the torrent's own (one tier).
	URLs []string
	// LocalIP, when valid, is the address requests are sent from, so that the tracker sees
	// the address this node listens on.
	LocalIP netip.Addr
	// MinInterval is the least time between two announces of a torrent to one tracker,
	// whatever the tracker says; default 10 s.
	MinInterval time.Duration
	Logger      *slog.Logger
}

// Client is a tracker Discovery adapter.
type Client struct {
	cfg    Config
	log    *slog.Logger
	peerID [20]byte

	mu       sync.Mutex
	torrents map[metainfo.Hash]*torrentState
	answered map[string]bool // trackers that ever answered

	announces, lookups, sent, received, found atomic.Int64
}

// torrentState is what the adapter remembers of one torrent.
type torrentState struct {
	last  peer.Announcement
	tiers [][]string // BEP 12: the URL that answered moves to the front of its tier
	next  time.Time  // no announce before this
	peers []netip.AddrPort
}

// New makes a tracker adapter.
func New(cfg Config) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = 10 * time.Second
	}
	c := &Client{cfg: cfg, log: cfg.Logger, torrents: make(map[metainfo.Hash]*torrentState), answered: make(map[string]bool)}
	copy(c.peerID[:], "-SH0001-")
	_, _ = rand.Read(c.peerID[8:])
	return c
}

// Name is "tracker".
func (c *Client) Name() string { return "tracker" }

// Announce tells the torrent's trackers about this node. Its answer's peers are what the next
// Lookup returns.
func (c *Client) Announce(ctx context.Context, a peer.Announcement) error {
	c.announces.Add(1)
	c.mu.Lock()
	st := c.state(a)
	st.last = a
	st.next = time.Time{} // an event is sent whatever the interval
	c.mu.Unlock()
	_, err := c.announce(ctx, a.InfoHash)
	return err
}

// Lookup announces again (at most as often as the tracker allows) and yields the peers.
func (c *Client) Lookup(ctx context.Context, ih metainfo.Hash) (<-chan netip.AddrPort, error) {
	c.lookups.Add(1)
	peers, err := c.announce(ctx, ih)
	out := make(chan netip.AddrPort, len(peers))
	for _, p := range peers {
		out <- p
	}
	close(out)
	return out, err
}

// state returns the torrent's state, creating it with its tiers: ours first, then its own.
// Call with c.mu held.
func (c *Client) state(a peer.Announcement) *torrentState {
	st := c.torrents[a.InfoHash]
	if st == nil {
		st = &torrentState{}
		if len(c.cfg.URLs) > 0 {
			st.tiers = append(st.tiers, append([]string(nil), c.cfg.URLs...))
		}
		for _, tier := range a.Trackers {
			st.tiers = append(st.tiers, append([]string(nil), tier...))
		}
		c.torrents[a.InfoHash] = st
	}
	return st
}

// announce sends the torrent's last announcement to the first tracker that answers, tier by
// tier, unless the interval has not passed; it returns the peers last heard of.
func (c *Client) announce(ctx context.Context, ih metainfo.Hash) ([]netip.AddrPort, error) {
	c.mu.Lock()
	st := c.torrents[ih]
	if st == nil {
		c.mu.Unlock()
		return nil, nil // never announced: there is no port to announce
	}
	if time.Now().Before(st.next) {
		peers := st.peers
		c.mu.Unlock()
		return peers, nil
	}
	a, tiers := st.last, cloneTiers(st.tiers)
	st.last.Event = peer.EventNone // an event is sent once
	c.mu.Unlock()
	if len(tiers) == 0 {
		return nil, nil
	}
	var errs []error
	for ti, tier := range tiers {
		for ui, u := range tier {
			resp, err := c.send(ctx, u, a)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", u, err))
				if ctx.Err() != nil {
					return nil, errors.Join(errs...)
				}
				continue
			}
			peers := make([]netip.AddrPort, 0, len(resp.Peers))
			for _, p := range resp.Peers {
				if ap, ok := p.ToNetipAddrPort(); ok && ap.Port() != 0 {
					peers = append(peers, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
				}
			}
			c.found.Add(int64(len(peers)))
			wait := max(time.Duration(resp.Interval)*time.Second, c.cfg.MinInterval)
			c.mu.Lock()
			c.answered[u] = true
			st.peers, st.next = peers, time.Now().Add(wait)
			if ui > 0 { // BEP 12: the tracker that answered goes first in its tier
				t := st.tiers[ti]
				copy(t[1:ui+1], t[:ui])
				t[0] = u
			}
			c.mu.Unlock()
			return peers, nil
		}
	}
	err := errors.Join(errs...)
	c.log.Debug("no tracker answered", "infohash", ih.HexString(), "err", err)
	return nil, err
}

// send makes one announce request.
func (c *Client) send(ctx context.Context, u string, a peer.Announcement) (tracker.AnnounceResponse, error) {
	var opts tracker.NewClientOpts
	opts.Slogger = c.log
	if c.cfg.LocalIP.IsValid() {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: c.cfg.LocalIP.AsSlice()}}
		opts.Http = trHttp.NewClientOpts{DialContext: d.DialContext}
		ip := c.cfg.LocalIP
		opts.ListenPacket = func(network, _ string) (net.PacketConn, error) {
			return net.ListenPacket(network, netip.AddrPortFrom(ip, 0).String())
		}
	}
	tc, err := tracker.NewClient(u, opts)
	if err != nil {
		return tracker.AnnounceResponse{}, err
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c.sent.Add(1)
	resp, err := tc.Announce(ctx, tracker.AnnounceRequest{
		InfoHash: a.InfoHash, PeerId: c.peerID, Port: uint16(a.Port),
		Left: a.Left, Uploaded: a.Uploaded, Downloaded: a.Downloaded,
		Event: event(a.Event), NumWant: -1,
	}, tracker.AnnounceOpt{UserAgent: "shoal/0.1"})
	if err == nil {
		c.received.Add(1)
	}
	return resp, err
}

func event(e peer.AnnounceEvent) tracker.AnnounceEvent {
	switch e {
	case peer.EventStarted:
		return tracker.Started
	case peer.EventCompleted:
		return tracker.Completed
	case peer.EventStopped:
		return tracker.Stopped
	}
	return tracker.None
}

func cloneTiers(t [][]string) [][]string {
	out := make([][]string, len(t))
	for i := range t {
		out[i] = append([]string(nil), t[i]...)
	}
	return out
}

// Stats is what announcing has cost: requests sent, answers received, trackers that answered.
func (c *Client) Stats() peer.SearchStats {
	c.mu.Lock()
	n := int64(len(c.answered))
	c.mu.Unlock()
	return peer.SearchStats{
		Announces: c.announces.Load(), Lookups: c.lookups.Load(),
		Sent: c.sent.Load(), Received: c.received.Load(),
		NodesContacted: n, PeersFound: c.found.Load(),
	}
}

// Close forgets every torrent; requests in flight end with their contexts.
func (c *Client) Close() error {
	c.mu.Lock()
	c.torrents = make(map[metainfo.Hash]*torrentState)
	c.mu.Unlock()
	return nil
}
