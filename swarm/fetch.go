package swarm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// progressEvery is how often a running torrent reports its progress.
const progressEvery = 250 * time.Millisecond

// Churn kills each chosen leecher once it has received between killFrom and killTo of the
// content, looking every churnEvery: progress events come four times a second, and a fast
// download goes far past its point in between.
const (
	killFrom, killTo = 0.10, 0.60
	churnEvery       = 10 * time.Millisecond
)

// errClosed is returned by what is asked of a closed swarm.
var errClosed = errors.New("swarm: closed")

// job is one torrent running on one node, in a goroutine the swarm owns: Close or Kill stops
// it. Its events go to the watcher attached to it, if any.
type job struct {
	node   int
	ih     metainfo.Hash
	seed   bool
	t      *peer.Torrent
	path   string // the content on disk: what was seeded, or where the download goes
	began  time.Time
	cancel context.CancelFunc

	ready     chan struct{} // closed at the Start event: the data is open and checked
	readyOnce sync.Once
	done      chan struct{} // closed once Run has returned; err is then set
	err       error
	watch     atomic.Pointer[watcher]
}

// watcher receives the events of the jobs it is attached to until stop is closed.
type watcher struct {
	notes chan note
	stop  chan struct{}
}

// note is one event of a job, or the end of its run.
type note struct {
	j     *job
	ev    peer.Event
	ended bool
}

func (j *job) run(ctx context.Context) {
	err := j.t.Run(ctx, peer.RunOptions{SeedTime: -1, Interval: progressEvery}, j.emit)
	j.err = err
	close(j.done)
	j.notify(note{j: j, ended: true})
}

// emit is called by Run, from j's goroutine.
func (j *job) emit(e peer.Event) {
	if _, ok := e.(peer.Start); ok {
		j.readyOnce.Do(func() { close(j.ready) })
	}
	j.notify(note{j: j, ev: e})
}

func (j *job) notify(n note) {
	w := j.watch.Load()
	if w == nil {
		return
	}
	select {
	case w.notes <- n:
	case <-w.stop:
	}
}

// start adds src to node i and runs it in a goroutine of the swarm's.
func (s *Swarm) start(i int, src *meta.Source, add peer.AddOptions, path string, w *watcher) (*job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if _, dead := s.dead[i]; dead {
		return nil, fmt.Errorf("swarm: node %d was killed", i)
	}
	t, err := s.nodes[i].Add(src, add)
	if err != nil {
		return nil, fmt.Errorf("swarm: node %d: %w", i, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j := &job{
		node: i, ih: src.InfoHash, seed: add.Seed, t: t, path: path, began: time.Now(), cancel: cancel,
		ready: make(chan struct{}), done: make(chan struct{}),
	}
	if w != nil {
		j.watch.Store(w)
	}
	s.jobs = append(s.jobs, j)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		j.run(ctx)
	}()
	return j, nil
}

// seeding is a torrent Seed made.
type seeding struct {
	src  *meta.Source
	path string
}

// Seed makes a torrent of the file or folder at path (naming the swarm's tracker in mode
// "tracker") and seeds it from the given nodes (node 0 when none are given) until the swarm
// closes or they are killed. It returns once every seeder has its data open; in mode
// "tracker", once the tracker lists them all.
func (s *Swarm) Seed(ctx context.Context, path string, nodes ...int) (*meta.Source, error) {
	if len(nodes) == 0 {
		nodes = []int{0}
	}
	if err := s.checkNodes(nodes); err != nil {
		return nil, err
	}
	var co meta.CreateOptions
	if s.announce != "" {
		co.Announce = []string{s.announce}
	}
	src, err := meta.Create(path, co)
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	s.mu.Lock()
	s.seeded[src.InfoHash] = seeding{src, path}
	s.mu.Unlock()
	var jobs []*job
	for _, i := range nodes {
		// The torrent was made from this very data a moment ago: no need to hash it again.
		add := peer.AddOptions{Dir: filepath.Dir(path), Name: filepath.Base(path), Seed: true, Hashed: true}
		j, err := s.start(i, src, add, path, nil)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		select {
		case <-j.ready:
		case <-j.done:
			return nil, fmt.Errorf("swarm: node %d cannot seed %s: %w", j.node, path, j.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.tracker != nil {
		if err := s.waitListed(ctx, src.InfoHash, len(nodes)); err != nil {
			return nil, err
		}
	}
	return src, nil
}

// listWait bounds how long Seed waits for the tracker to list its seeders.
const listWait = 30 * time.Second

// waitListed waits until the tracker lists n seeders of ih.
func (s *Swarm) waitListed(ctx context.Context, ih metainfo.Hash, n int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(listWait)
	defer deadline.Stop()
	for {
		for _, t := range s.tracker.Stats().PerTorrent {
			if t.InfoHash == ih.HexString() && t.Seeders >= n {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("swarm: the tracker did not list the %d seeders of %s within %v", n, ih.HexString(), listWait)
		}
	}
}

// checkNodes refuses indices out of range, repeated, or of killed nodes.
func (s *Swarm) checkNodes(nodes []int) error {
	seen := make(map[int]bool, len(nodes))
	for _, i := range nodes {
		switch {
		case i < 0 || i >= len(s.nodes):
			return fmt.Errorf("swarm: no node %d (the swarm has %d)", i, len(s.nodes))
		case seen[i]:
			return fmt.Errorf("swarm: node %d given twice", i)
		case !s.Alive(i):
			return fmt.Errorf("swarm: node %d is not running", i)
		}
		seen[i] = true
	}
	return nil
}

// FetchOptions says which nodes fetch a torrent and what happens to them meanwhile.
type FetchOptions struct {
	// Nodes fetch the torrent; none means every running node that does not have it yet.
	Nodes []int
	// Churn is the share of them, 0 <= Churn < 1, killed midway (as Kill does): each chosen at
	// random and killed once it has received a random 10 to 60% of the content (a little more
	// on a fast link: it is looked at every 10 ms). One that completes first is replaced by
	// another still downloading, if there is one. Killed nodes are
	// reported, not counted as failures; at least one node is left alive.
	Churn float64
	// Timeout bounds the wait for every node left alive to complete; 0 waits until ctx ends.
	Timeout time.Duration
	// Magnet starts the even-numbered nodes from the bare magnet link, so that even the
	// metadata comes from peers their discovery found; the others start from the torrent.
	Magnet bool
	// Seed makes the churn's choices reproducible; 0 picks at random.
	Seed uint64
}

// Kills is how many of n leechers a churn of share kills: the nearest whole number, at least
// one left alive.
func Kills(share float64, n int) int {
	if share <= 0 || n < 2 {
		return 0
	}
	return min(int(math.Round(share*float64(n))), n-1)
}

// leech is what Fetch knows of one of its downloads.
type leech struct {
	j         *job
	firstPeer time.Time
	completed int64
	killAt    int64 // churn: kill once it has received this much; -1: never
	done      bool
	seconds   float64 // the download's time, once done
	killed    bool
	failed    string
}

func (l *leech) running() bool { return !l.done && !l.killed && l.failed == "" }

// firstPeerSeconds is the time from the download's start to its first connection, or 0.
func (l *leech) firstPeerSeconds() float64 {
	if l.firstPeer.IsZero() {
		return 0
	}
	return max(l.firstPeer.Sub(l.j.began).Seconds(), 0)
}

// Fetch downloads src, a torrent Seed made, on the nodes opts names, all at once, with no peer
// address given: each finds peers through the swarm's mode alone. It reports through emit
// (from the calling goroutine; nil ignores the events) and returns when every node left alive
// has completed, or failed, or opts.Timeout or ctx ended. Then it checks the sha256 of every
// completed copy against the seeded original and returns what it measured. The report says
// whether every node left alive holds the verified content (Report.OK); the error is for a
// Fetch that could not start, or ctx's error when it ended early. The downloads keep seeding
// until the swarm closes.
func (s *Swarm) Fetch(ctx context.Context, src *meta.Source, opts FetchOptions, emit func(Event)) (*Report, error) {
	if emit == nil {
		emit = func(Event) {}
	}
	s.mu.Lock()
	sd, ok := s.seeded[src.InfoHash]
	held := make(map[int]bool)
	var seeders []*job
	for _, j := range s.jobs {
		if j.ih != src.InfoHash {
			continue
		}
		held[j.node] = true
		if _, dead := s.dead[j.node]; j.seed && !dead {
			seeders = append(seeders, j)
		}
	}
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("swarm: Fetch of %s, which Seed did not make", src.InfoHash.HexString())
	}
	src = sd.src
	nodes := opts.Nodes
	if len(nodes) == 0 {
		for i := range s.nodes {
			if !held[i] && s.Alive(i) {
				nodes = append(nodes, i)
			}
		}
	}
	if err := s.checkNodes(nodes); err != nil {
		return nil, err
	}
	for _, i := range nodes {
		if held[i] {
			return nil, fmt.Errorf("swarm: node %d already has %s", i, src.InfoHash.HexString())
		}
	}
	if len(nodes) == 0 {
		return nil, errors.New("swarm: no node left to fetch on")
	}
	if opts.Churn < 0 || opts.Churn >= 1 {
		return nil, fmt.Errorf("swarm: churn %v: want 0 <= churn < 1", opts.Churn)
	}
	magnet, err := meta.ParseMagnet(meta.Magnet(src))
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	f := &fetch{
		s: s, emit: emit, size: src.Info.TotalLength(), began: time.Now(), seeders: seeders,
		base: make(map[*job]int64), upload: make(map[*job][]sample), leeches: make(map[*job]*leech, len(nodes)),
		rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed)),
	}
	if opts.Seed == 0 {
		f.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	for _, n := range s.nodes {
		f.addrs = append(f.addrs, n.Addr().Addr().String())
	}
	launch := Launch{
		Event: "start", Mode: s.mode, InfoHash: src.InfoHash.HexString(), Name: src.Info.BestName(),
		Size: f.size, Files: len(src.Info.UpvertedFiles()), Pieces: src.Info.NumPieces(), PieceLength: src.Info.PieceLength,
		Addrs: f.addrs, Leechers: nodes, Kills: Kills(opts.Churn, len(nodes)),
	}

	// Every event of the seeders (their progress shows what they upload) and of the
	// downloads comes to w, until Fetch returns.
	w := &watcher{notes: make(chan note, 1024), stop: make(chan struct{})}
	var attached []*job
	defer func() {
		close(w.stop)
		for _, j := range attached {
			j.watch.CompareAndSwap(w, nil)
		}
	}()
	for _, j := range seeders {
		j.watch.Store(w)
		attached = append(attached, j)
		_, f.base[j] = s.transferred(j)
		launch.Seeders = append(launch.Seeders, j.node)
	}
	emit(launch)
	for _, i := range nodes {
		from := src
		if opts.Magnet && i%2 == 0 {
			from = magnet
		}
		dir := s.nodeDir(i, "files")
		j, err := s.start(i, from, peer.AddOptions{Dir: dir}, filepath.Join(dir, src.Info.BestName()), w)
		if err != nil {
			return nil, err
		}
		attached = append(attached, j)
		l := &leech{j: j, killAt: -1}
		f.leeches[j] = l
		f.order = append(f.order, l)
	}
	for _, k := range f.rng.Perm(len(f.order))[:launch.Kills] {
		f.order[k].killAt = f.killAt()
	}
	f.running = len(f.order)
	if stopped := f.wait(ctx, w, opts.Timeout); stopped != nil {
		for _, l := range f.order {
			if l.running() {
				f.fail(l.j.node, fmt.Sprintf("%v, with %s of %s", stopped, meta.SizeText(l.completed), meta.SizeText(f.size)))
			}
		}
	}
	rep, err := f.report(launch, sd.path)
	if err != nil {
		return nil, err
	}
	return rep, ctx.Err()
}

// fetch is a Fetch under way; the goroutine that called Fetch owns it.
type fetch struct {
	s       *Swarm
	emit    func(Event)
	size    int64
	addrs   []string // of every node of the swarm
	began   time.Time
	rng     *rand.Rand
	seeders []*job
	base    map[*job]int64    // what each seeder had uploaded before
	upload  map[*job][]sample // each seeder's upload during the downloads, from its progress
	order   []*leech
	leeches map[*job]*leech

	running  int       // downloads not yet complete, killed or failed
	last     time.Time // the last completion
	failures []Failure
}

// wait handles the events until every download is complete, killed or failed, and returns
// nil; or why it stopped early.
func (f *fetch) wait(ctx context.Context, w *watcher, timeout time.Duration) error {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	churn := time.NewTicker(churnEvery)
	defer churn.Stop()
	for f.running > 0 {
		var poll <-chan time.Time
		if len(f.due()) > 0 {
			poll = churn.C
		}
		select {
		case n := <-w.notes:
			if l := f.leeches[n.j]; l != nil {
				f.onLeech(l, n)
			} else {
				f.onSeeder(n)
			}
		case <-poll:
			f.churn()
		case <-expired:
			return fmt.Errorf("not complete after %v", timeout)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return errors.New("out of time")
			}
			return errors.New("interrupted")
		}
	}
	return nil
}

func (f *fetch) onSeeder(n note) {
	if n.ended && f.s.Alive(n.j.node) {
		f.fail(n.j.node, fmt.Sprintf("seeding stopped: %v", n.j.err))
	}
	if p, ok := n.ev.(peer.Progress); ok {
		f.upload[n.j] = append(f.upload[n.j], sample{time.Now(), p.Uploaded - f.base[n.j]})
		f.emit(Progress{Event: "progress", Node: n.j.node, Addr: f.addrs[n.j.node], Seeder: true, Seconds: time.Since(f.began).Seconds(),
			Completed: p.Completed, Size: p.Size, Peers: p.Peers, DownRate: p.DownRate, UpRate: p.UpRate, Uploaded: p.Uploaded - f.base[n.j]})
	}
}

func (f *fetch) onLeech(l *leech, n note) {
	if l.killed {
		return
	}
	switch e := n.ev.(type) {
	case peer.PeerFound:
		if l.firstPeer.IsZero() {
			l.firstPeer = e.At
		}
	case peer.Progress:
		l.completed = e.Completed
		f.emit(Progress{Event: "progress", Node: l.j.node, Addr: f.addrs[l.j.node], Seconds: time.Since(f.began).Seconds(),
			Completed: e.Completed, Size: e.Size, Peers: e.Peers, DownRate: e.DownRate, UpRate: e.UpRate, Uploaded: e.Uploaded})
	case peer.Complete:
		if l.done {
			return
		}
		l.done, l.seconds, l.completed = true, e.Seconds, e.Size
		f.last = time.Now()
		f.running--
		f.emit(Complete{Event: "complete", Node: l.j.node, Addr: f.addrs[l.j.node], Seconds: e.Seconds,
			FirstPeer: l.firstPeerSeconds(), Downloaded: e.Downloaded, Uploaded: e.Uploaded})
		if l.killAt >= 0 {
			// It completed before its time came: another takes its place, if one is left.
			l.killAt = -1
			var cands []*leech
			for _, c := range f.order {
				if c.running() && c.killAt < 0 {
					cands = append(cands, c)
				}
			}
			if len(cands) > 0 {
				cands[f.rng.IntN(len(cands))].killAt = f.killAt()
			}
		}
	}
	if n.ended && l.running() {
		l.failed = "stopped before completing"
		if n.j.err != nil {
			l.failed = n.j.err.Error()
		}
		f.running--
		f.fail(l.j.node, l.failed)
		f.emit(Failed{Event: "failed", Node: l.j.node, Addr: f.addrs[l.j.node], Reason: l.failed})
	}
}

// killAt picks the point at which a download is killed.
func (f *fetch) killAt() int64 {
	return int64((killFrom + f.rng.Float64()*(killTo-killFrom)) * float64(f.size))
}

// due are the downloads still to be killed.
func (f *fetch) due() (out []*leech) {
	for _, l := range f.order {
		if l.killAt >= 0 && l.running() {
			out = append(out, l)
		}
	}
	return out
}

// churn kills the downloads due that have come to their point.
func (f *fetch) churn() {
	for _, l := range f.due() {
		if down, _ := l.j.t.Transferred(); down < l.killAt {
			continue
		}
		if _, err := f.s.kill(l.j.node); err != nil {
			f.s.log.Warn("churn", "err", err)
		}
		l.killed = true
		f.running--
		down, _ := f.s.transferred(l.j)
		l.completed = max(l.completed, down)
		f.emit(Killed{Event: "killed", Node: l.j.node, Addr: f.addrs[l.j.node], Seconds: time.Since(l.j.began).Seconds(),
			Completed: l.completed, Size: f.size})
	}
}

func (f *fetch) fail(node int, reason string) {
	f.failures = append(f.failures, Failure{Node: node, Addr: f.addrs[node], Reason: reason})
}

// report checks every completed copy against the original at path, file by file, and sums
// up.
func (f *fetch) report(launch Launch, original string) (*Report, error) {
	last := f.last
	if last.IsZero() {
		last = time.Now()
	}
	rep := &Report{
		Event: "summary", Mode: launch.Mode, InfoHash: launch.InfoHash, Name: launch.Name,
		Size: f.size, Files: launch.Files, Pieces: launch.Pieces, Seconds: last.Sub(f.began).Seconds(),
	}
	var copies []string
	for _, l := range f.order {
		if l.done {
			copies = append(copies, l.j.path)
		}
	}
	mismatch, err := verify(original, copies)
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	for _, l := range f.order {
		if !l.done {
			continue
		}
		if why, bad := mismatch[l.j.path]; bad {
			f.fail(l.j.node, why)
			continue
		}
		rep.Verified++
	}
	for _, j := range f.seeders {
		down, up := f.s.transferred(j)
		up -= f.base[j]
		rep.UploadedBySeeders += up
		rep.add(NodeResult{Node: j.node, Addr: f.addrs[j.node], Role: "seeder", State: "seeding", Completed: f.size,
			Downloaded: down, Uploaded: up, Discovery: f.s.searchStats(j.node), Path: j.path})
	}
	for _, l := range f.order {
		down, up := f.s.transferred(l.j)
		rep.UploadedByLeechers += up
		rep.Downloaded += down
		r := NodeResult{Node: l.j.node, Addr: f.addrs[l.j.node], Role: "leecher", Completed: l.completed, FirstPeer: l.firstPeerSeconds(),
			Downloaded: down, Uploaded: up, Discovery: f.s.searchStats(l.j.node), Path: l.j.path}
		switch {
		case l.killed:
			r.State = "killed"
		case l.done:
			r.State, r.Seconds = "complete", l.seconds
		case l.failed != "":
			r.State = "failed"
		default:
			r.State = "incomplete"
		}
		rep.add(r)
	}
	rep.bound(f.s.upRate, f.upload)
	slices.SortFunc(f.failures, func(a, b Failure) int { return a.Node - b.Node })
	rep.finish(f.failures)
	return rep, nil
}
