package peer

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
)

// Timing of discovery for one torrent.
const (
	// firstRetry is the wait before a second lookup; it doubles up to maxRetry while the
	// download is incomplete.
	firstRetry = time.Second
	maxRetry   = 30 * time.Second
	// reannounce is how often a torrent is announced again.
	reannounce = 5 * time.Minute
)

// foundPeer is an address an adapter found, on its way to the torrent.
type foundPeer struct {
	addr   netip.AddrPort
	source string
}

// search runs every discovery adapter for one torrent: lookups at once (a magnet needs peers
// for its metadata), announces once the data is ready. It is started and stopped by Run.
type search struct {
	t     *Torrent
	found chan foundPeer
	ready chan struct{} // closed by Run when storage is open and verified
	once  sync.Once
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

// startSearch starts one goroutine per adapter; stop cancels and waits for them.
func (t *Torrent) startSearch(ctx context.Context) *search {
	ctx, cancel := context.WithCancel(ctx)
	s := &search{t: t, found: make(chan foundPeer, 256), ready: make(chan struct{}), stop: cancel}
	for _, d := range t.node.cfg.Discovery {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, d)
		}()
	}
	return s
}

// markReady lets the adapters announce.
func (s *search) markReady() { s.once.Do(func() { close(s.ready) }) }

// close stops the adapters' goroutines and waits for them. A last "stopped" announce is
// sent with a short deadline so trackers drop this node at once.
func (s *search) close() {
	s.stop()
	s.wg.Wait()
}

// run is one adapter's loop: look up while peers are wanted, announce when ready and then
// every reannounce, and tell trackers when the download completes. A lookup runs in a
// goroutine of its own (one at a time), so that a slow search never holds an announce back.
func (s *search) run(ctx context.Context, d Discovery) {
	retry := firstRetry
	nextLookup := time.Now()
	var nextAnnounce time.Time
	announced, completed := false, false
	ready := s.ready
	var looking chan struct{} // closed when the lookup in flight ends; nil when none is
	defer func() {
		if looking != nil {
			<-looking
		}
	}()
	if tracksEvents(d) && s.t.t.Info() == nil {
		// A magnet: a tracker hands out peers only in answer to an announce, and the
		// metadata must come from those peers. Announce now, the size unknown; the
		// announce once the data is ready says what is left.
		_, announced = s.announce(ctx, d, EventStarted)
		nextAnnounce = time.Now().Add(reannounce)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		wanted := !s.t.t.Complete().Bool()
		if wanted && looking == nil && !now.Before(nextLookup) {
			looking = make(chan struct{})
			go func(done chan struct{}) {
				defer close(done)
				s.lookup(ctx, d)
			}(looking)
		}
		if announced && !completed && !wanted {
			// Not completed until a tracker took it: a run that ends at once (no seeding)
			// cancels ctx, perhaps with this announce in flight, and says it again below.
			completed = true
			if tracksEvents(d) {
				_, completed = s.announce(ctx, d, EventCompleted)
			}
		}
		if announced && !now.Before(nextAnnounce) {
			s.announce(ctx, d, EventNone)
			nextAnnounce = time.Now().Add(reannounce)
		}
		wait := time.Until(nextAnnounce)
		if !announced {
			wait = maxRetry
		}
		if wanted && looking == nil {
			wait = min(wait, time.Until(nextLookup))
		}
		timer.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			if !announced && ready != nil {
				select {
				case <-ready: // ready, but the run ended before this loop got to it
					downloaded, _ := s.t.Transferred()
					announced, completed = true, downloaded == 0
				default:
				}
			}
			if announced && tracksEvents(d) {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if !completed && s.t.t.Complete().Bool() {
					s.announce(sctx, d, EventCompleted)
				}
				s.announce(sctx, d, EventStopped)
				cancel()
			}
			return
		case <-looking:
			looking = nil
			nextLookup = time.Now().Add(retry)
			retry = min(retry*2, maxRetry)
		case <-ready:
			ready = nil
			ev := EventStarted
			if announced { // a magnet's started went out before its metadata came
				ev = EventNone
			}
			announced = true
			left, _ := s.announce(ctx, d, ev)
			completed = left == 0 // nothing left: no completed event to send later
			nextAnnounce = time.Now().Add(reannounce)
			// A tracker's answer to the announce is a lookup's worth of peers.
			nextLookup = time.Now()
		case <-timer.C:
		}
	}
}

func (s *search) lookup(ctx context.Context, d Discovery) {
	if s.private() && d.Name() != "tracker" {
		return
	}
	ch, err := d.Lookup(ctx, s.t.src.InfoHash)
	if err != nil {
		s.t.node.log.Debug("lookup failed", "via", d.Name(), "err", err)
	}
	if ch == nil {
		return
	}
	for addr := range ch {
		select {
		case s.found <- foundPeer{addr, d.Name()}:
		case <-ctx.Done():
			for range ch { // the adapter closes it once ctx is done
			}
			return
		}
	}
}

// announce tells d about the torrent, and returns the bytes left that it announced and
// whether d took the announce. A started announce of a download that has finished already
// (nothing left, bytes read in this run) goes out as completed: a tracker takes a completed
// event that follows a left=0 announce for a seed's and does not count it. Left is -1 while
// the metadata is unknown (the library's own count would say 0, and make a seed of a magnet
// that has nothing); the tracker client sends it as a leecher's.
func (s *search) announce(ctx context.Context, d Discovery, ev AnnounceEvent) (left int64, ok bool) {
	left = -1
	if s.t.t.Info() != nil {
		left = s.t.t.BytesMissing()
	}
	if s.private() && d.Name() != "tracker" {
		return left, true
	}
	st := s.t.t.Stats()
	if ev == EventStarted && left == 0 && read(&st) > 0 && tracksEvents(d) {
		ev = EventCompleted
	}
	a := Announcement{
		InfoHash: s.t.src.InfoHash, Port: int(s.t.node.Addr().Port()),
		Left: left, Uploaded: written(&st), Downloaded: read(&st),
		Event: ev, Trackers: s.t.src.Trackers,
	}
	if err := d.Announce(ctx, a); err != nil {
		if ctx.Err() == nil {
			s.t.node.log.Debug("announce failed", "via", d.Name(), "err", err)
		}
		return left, false
	}
	return left, true
}

// tracksEvents says the adapter wants the completed and stopped events: trackers count
// seeders and downloads with them, a DHT has no use for them.
func tracksEvents(d Discovery) bool { return d.Name() != "dht" && d.Name() != "flood" }

// private says the torrent is private (BEP 27): its peers come from its trackers only.
func (s *search) private() bool {
	info := s.t.t.Info()
	return info != nil && info.Private != nil && *info.Private
}

// addFound hands a found address to the torrent.
func (t *Torrent) addFound(p foundPeer) {
	t.t.AddPeers([]torrent.PeerInfo{{
		Addr:   torrent.IpPort{IP: net.IP(p.addr.Addr().AsSlice()), Port: p.addr.Port()},
		Source: peerSource(p.source),
	}})
}

// peerSource maps an adapter's name to the library's peer source, which the peer event reports.
func peerSource(name string) torrent.PeerSource {
	switch name {
	case "dht":
		return torrent.PeerSourceDhtGetPeers
	case "tracker":
		return torrent.PeerSourceTracker
	}
	return torrent.PeerSource(name)
}
