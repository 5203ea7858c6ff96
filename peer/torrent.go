package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/storage"
)

// Torrent is one torrent a node works on.
type Torrent struct {
	node      *Node
	t         *torrent.Torrent
	src       *meta.Source
	store     *storage.Store // nil until the metadata is known and checked; set under node.mu
	storeOpts storage.Options
	metadata  *metadataCopy // a magnet's metadata as it arrives; nil with a .torrent
	opts      AddOptions
	peers     []netip.AddrPort
	writeErrs chan error
	conns     chan PeerFound   // from Node.onPeerConn
	lastDial  time.Time        // owned by Run
	found     <-chan foundPeer // from the discovery adapters, read by Run
	watch     *hashWatch       // failed pieces and bans
}

// RunOptions says when a torrent is done with.
type RunOptions struct {
	// SeedTime is how long to keep seeding after the download completes; a negative value
	// seeds until the context ends, 0 returns at once.
	SeedTime time.Duration
	// SeedRatio, when above 0, stops seeding once uploaded/size reaches it.
	SeedRatio float64
	// Interval between progress events; 0 means half a second.
	Interval time.Duration
}

// Reasons a Run ends without error, as in the Stop event.
const (
	StopSeedTime    = "seed-time"
	StopSeedRatio   = "seed-ratio"
	StopInterrupted = "interrupted"
)

// ErrInterrupted is returned by Run when the context ended before the download completed.
var ErrInterrupted = errors.New("interrupted")

// redialEvery is how often the direct peers are offered to the client again: one that was not
// up yet, or that dropped us, is dialled once more.
const redialEvery = 2 * time.Second

// Run fetches the metadata if needed, checks it, opens the storage, verifies what is already
// on disk, downloads the rest and seeds as opts say. It reports through emit, from this
// goroutine only. It returns nil when seeding ends by seed time or ratio, or when ctx ends
// after the download completed; ErrInterrupted when ctx ends before that.
func (t *Torrent) Run(ctx context.Context, opts RunOptions, emit func(Event)) error {
	if opts.Interval <= 0 {
		opts.Interval = 500 * time.Millisecond
	}
	started := time.Now()
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	search := t.startSearch(ctx)
	defer search.close()
	t.found = search.found
	info, err := t.awaitInfo(ctx, tick.C, emit)
	if err != nil {
		return err
	}
	if err := t.prepare(ctx, info, emit); err != nil {
		return err
	}
	search.markReady()
	defer t.startSpread(ctx)() // share.go
	size, root := info.TotalLength(), t.store.Root(info)
	// Piece states tell which pieces from peers failed their hash (ban.go).
	states := t.t.SubscribePieceStateChanges()
	defer states.Close()
	stateValues := states.Values

	// Download, then seed.
	base := t.t.Stats()
	var last torrent.TorrentStats = base
	lastAt := time.Now()
	var seedUntil time.Time
	completed := false
	for {
		t.reportPeers(emit)
		if !completed && t.t.Complete().Bool() {
			if err := t.checkPlaced(info); err != nil {
				return err
			}
			completed = true
			t.checkBans(emit)
			s := t.t.Stats()
			emit(Complete{Event: "complete", InfoHash: t.src.InfoHash.HexString(), Size: size,
				Seconds:    time.Since(started).Seconds(),
				Downloaded: read(&s) - read(&base), Uploaded: written(&s) - written(&base),
				PiecesFailed: s.PiecesDirtiedBad.Int64() - base.PiecesDirtiedBad.Int64(),
				PeersBanned:  len(t.watch.banned),
				Discovery:    t.node.SearchStats()})
			if opts.SeedTime == 0 {
				return nil
			}
			if opts.SeedTime > 0 {
				seedUntil = time.Now().Add(opts.SeedTime)
			}
		}
		if completed {
			s := t.t.Stats()
			up := written(&s) - written(&base)
			switch {
			case opts.SeedRatio > 0 && float64(up) >= opts.SeedRatio*float64(size):
				emit(Stop{Event: "stop", Reason: StopSeedRatio, Uploaded: up})
				return nil
			case !seedUntil.IsZero() && !time.Now().Before(seedUntil):
				emit(Stop{Event: "stop", Reason: StopSeedTime, Uploaded: up})
				return nil
			}
		}
		completeOn := t.t.Complete().On()
		if completed {
			completeOn = nil
		}
		select {
		case <-ctx.Done():
			if !completed {
				return ErrInterrupted
			}
			s := t.t.Stats()
			emit(Stop{Event: "stop", Reason: StopInterrupted, Uploaded: written(&s) - written(&base)})
			return nil
		case err := <-t.writeErrs:
			return writeError(root, err, t.verifiedBytes(info), size)
		case <-completeOn:
		case p := <-t.found:
			t.addFound(p)
			continue
		case c, ok := <-stateValues:
			if !ok {
				stateValues = nil // the torrent was closed
				continue
			}
			t.onPieceState(c, emit)
			continue
		case <-tick.C:
		}
		t.checkBans(emit)
		t.dialDirect()
		now := time.Now()
		s := t.t.Stats()
		dt := now.Sub(lastAt).Seconds()
		p := Progress{Event: "progress", Completed: t.t.BytesCompleted(), Size: size, Peers: s.ActivePeers,
			Uploaded: written(&s) - written(&base), Downloaded: read(&s) - read(&base)}
		if dt > 0 {
			p.DownRate = int64(float64(read(&s)-read(&last)) / dt)
			p.UpRate = int64(float64(written(&s)-written(&last)) / dt)
		}
		last, lastAt = s, now
		emit(p)
	}
}

// awaitInfo waits for the metadata: at once from a .torrent, or from peers (BEP 9).
func (t *Torrent) awaitInfo(ctx context.Context, tick <-chan time.Time, emit func(Event)) (*metainfo.Info, error) {
	t.dialDirect()
	var arrived <-chan []byte
	if t.metadata != nil {
		arrived = t.metadata.out
	}
	for {
		select {
		case b := <-arrived:
			// The library may refuse this metadata without a word: say why here.
			if _, err := meta.ParseInfo(b); err != nil {
				return nil, fmt.Errorf("refusing metadata from peers: %w", err)
			}
			arrived = nil
		case <-t.t.GotInfo():
			info := t.t.Info()
			if err := meta.CheckInfo(info); err != nil {
				return nil, fmt.Errorf("refusing metadata from peers: %w", err)
			}
			return info, nil
		case <-ctx.Done():
			return nil, ErrInterrupted
		case p := <-t.found:
			t.addFound(p)
		case <-tick:
			t.dialDirect()
			t.reportPeers(emit)
		}
	}
}

// prepare opens the storage, hashes what is on disk where it cannot be trusted, and starts
// the download and the tracker announces.
func (t *Torrent) prepare(ctx context.Context, info *metainfo.Info, emit func(Event)) error {
	if t.store == nil {
		if err := t.openStore(); err != nil {
			return err
		}
	}
	root := t.store.Root(info)
	final, partial, err := t.store.OnDisk(info)
	if err != nil {
		return err
	}
	if err := t.t.OpenStorage(ctx, t.store); err != nil {
		return fmt.Errorf("opening %s: %w", root, err)
	}
	// Hash what is on disk rather than trust it when this node did not write it (files of
	// the same name), or when a download was cut short: the resume record lags the data by
	// up to a second, and a killed run leaves verified pieces it never recorded.
	// And when the resume record was damaged (a power cut while it was written).
	verify := (len(final) > 0 && !t.store.Resumed()) ||
		(len(final)+len(partial) > 0 && (!t.t.Complete().Bool() || t.store.Damaged()))
	if t.opts.Seed {
		// A seed is always hashed, unless its torrent was just made from it.
		verify = !t.opts.Hashed
	}
	size := info.TotalLength()
	if !t.opts.Seed && !t.t.Complete().Bool() {
		// Say at once when nothing can be written, before hashing and dialling.
		if err := t.store.CheckWritable(info); err != nil {
			return writeError(root, err, -1, size)
		}
	}
	emit(Start{Event: "start", InfoHash: t.src.InfoHash.HexString(), Name: info.BestName(), Size: size,
		Pieces: info.NumPieces(), Listen: t.node.ListenAddr(), Magnet: t.magnet(info)})

	if verify {
		if err := t.verify(ctx, size, emit); err != nil {
			return err
		}
		missing := t.t.BytesMissing()
		switch {
		case t.opts.Seed && missing > 0:
			return fmt.Errorf("data at %s does not match the torrent: %d of %d bytes missing or corrupt",
				root, missing, size)
		case missing > 0 && len(final) > 0 && !t.store.Resumed():
			// Downloading would overwrite files shoal did not write.
			return fmt.Errorf("%s is in the way: it exists and does not match the torrent; move it or choose another -o", final[0])
		}
	}
	if !t.opts.Seed {
		t.t.DownloadAll()
	}
	return nil
}

// openStore opens the storage of a torrent whose metadata came from peers and was checked.
func (t *Torrent) openStore() error {
	st, err := storage.Open(t.storeOpts)
	if err != nil {
		return err
	}
	n := t.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if !slices.Contains(n.torrents, t) { // the node was closed meanwhile
		st.Close()
		return ErrInterrupted
	}
	t.store = st
	return nil
}

// verifyWorkers is how many pieces verify keeps queued for the library's piece hashers (two
// a torrent): the library's own VerifyData queues one piece and waits for it before the next,
// so only one hasher works.
const verifyWorkers = 4

// verify hashes the data on disk, reporting progress.
func (t *Torrent) verify(ctx context.Context, size int64, emit func(Event)) error {
	done := make(chan error, 1)
	go func() { done <- verifyAll(ctx, t.t, verifyWorkers) }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	base := t.t.Stats().BytesHashed
	for {
		select {
		case err := <-done:
			if err == nil {
				err = t.settle(ctx)
			}
			emit(Verify{Event: "verify", Checked: size, Size: size})
			if err != nil && ctx.Err() != nil {
				return ErrInterrupted
			}
			return err
		case <-tick.C:
			s := t.t.Stats()
			emit(Verify{Event: "verify", Checked: min(s.BytesHashed.Int64()-base.Int64(), size), Size: size})
		}
	}
}

// verifyAll hashes every piece of t, with workers pieces queued at a time, and returns the
// first error once every worker has stopped (the first error stops the others).
func verifyAll(ctx context.Context, t *torrent.Torrent, workers int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	n := t.NumPieces()
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					errs <- nil
					return
				}
				if err := t.Piece(i).VerifyDataContext(ctx); err != nil {
					errs <- fmt.Errorf("verifying piece %d: %w", i, err)
					return
				}
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// settle waits until no piece is still being hashed or marked in storage: VerifyData
// returns once every piece is hashed, but recording the result can lag behind on a busy
// machine, and a piece caught in between reads as missing.
func (t *Torrent) settle(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		busy := false
		for _, r := range t.t.PieceStateRuns() {
			busy = busy || r.Hashing || r.QueuedForHash || r.Marking
		}
		if !busy {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// dialDirect offers the direct peers to the client, at most every redialEvery; it dials
// those it is not connected to.
func (t *Torrent) dialDirect() {
	if len(t.peers) == 0 || time.Since(t.lastDial) < redialEvery {
		return
	}
	t.lastDial = time.Now()
	pis := make([]torrent.PeerInfo, 0, len(t.peers))
	for _, ap := range t.peers {
		pis = append(pis, torrent.PeerInfo{
			Addr:   torrent.IpPort{IP: net.IP(ap.Addr().AsSlice()), Port: ap.Port()},
			Source: torrent.PeerSourceDirect,
		})
	}
	t.t.AddPeers(pis)
}

// reportPeers emits a PeerFound for each connection made since the last call.
func (t *Torrent) reportPeers(emit func(Event)) {
	for {
		select {
		case p := <-t.conns:
			emit(p)
		default:
			return
		}
	}
}

func sourceName(s torrent.PeerSource) string {
	switch s {
	case torrent.PeerSourceDirect:
		return "direct"
	case torrent.PeerSourceTracker:
		return "tracker"
	case torrent.PeerSourceDhtGetPeers, torrent.PeerSourceDhtAnnouncePeer:
		return "dht"
	case torrent.PeerSourcePex:
		return "pex"
	case torrent.PeerSourceIncoming:
		return "incoming"
	default:
		return string(s)
	}
}

func (t *Torrent) onWriteError(err error) {
	t.t.DisallowDataDownload()
	select {
	case t.writeErrs <- err:
	default:
	}
}

// magnet is the torrent's magnet link, with its trackers.
func (t *Torrent) magnet(info *metainfo.Info) string {
	src := *t.src
	src.Name = info.BestName()
	return meta.Magnet(&src)
}

// Transferred is the payload read from peers (pieces kept) and sent to them since the torrent
// was added: for a torrent run once, what its Complete and Stop events report. It is safe to
// call from any goroutine.
func (t *Torrent) Transferred() (downloaded, uploaded int64) {
	s := t.t.Stats()
	return read(&s), written(&s)
}

func read(s *torrent.TorrentStats) int64    { return s.BytesReadUsefulData.Int64() }
func written(s *torrent.TorrentStats) int64 { return s.BytesWrittenData.Int64() }
