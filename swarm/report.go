package swarm

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// Report is what a Fetch measured: the summary of `shoal swarm`. Its JSON keys are snake_case.
type Report struct {
	Event string `json:"event"` // "summary"
	// OK says every leecher left alive holds the content, each file's sha256 matching the
	// original, and nothing failed; Reason says why not, in one line.
	OK       bool   `json:"ok"`
	Reason   string `json:"reason,omitempty"`
	Mode     string `json:"mode"`
	InfoHash string `json:"infohash"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Files    int    `json:"files"`
	Pieces   int    `json:"pieces"`

	Nodes    int `json:"nodes"` // seeders and leechers
	Seeders  int `json:"seeders"`
	Leechers int `json:"leechers"`
	// Completed leechers hold every piece; Verified ones also passed the sha256 check.
	Completed int `json:"completed"`
	Verified  int `json:"verified"`
	Killed    int `json:"killed"`
	Failed    int `json:"failed"`
	// Seconds is from the start of the downloads to the last completion (to the end, when
	// none completed).
	Seconds float64 `json:"seconds"`
	// FirstPeer is each leecher's time from its start to its first connection to a peer
	// (killed ones included); Complete each completed leecher's download time.
	FirstPeer Spread `json:"first_peer_seconds"`
	Complete  Spread `json:"complete_seconds"`
	// UploadedBySeeders and UploadedByLeechers are payload bytes sent during the downloads:
	// the leechers' share is what they served each other. Downloaded is what the leechers
	// read, killed ones included.
	UploadedBySeeders  int64 `json:"uploaded_by_seeders"`
	UploadedByLeechers int64 `json:"uploaded_by_leechers"`
	Downloaded         int64 `json:"downloaded"`
	// SeederUpload is UploadedBySeeders over Size: how many copies of the content the seeders
	// sent. Each leecher serving the others, it stays near 1 however many leechers there are;
	// a swarm whose leechers fetch everything from the seeders makes it the number of leechers.
	SeederUpload float64 `json:"seeder_upload_multiple"`
	// Bound is the seeders' upload bound: the time they need to send the content once, Size
	// over BoundRate, their upload rate together. BoundFrom says where that rate comes from:
	// "upload-rate", the cap every node has (Config.UploadRate, times the seeders); or
	// "measured", the highest upload rate each seeder reached over a second of the downloads
	// (from its progress events, four a second), added up. No swarm completes sooner than
	// Bound; BoundRatio is Seconds over Bound (0 when there is no bound: no seeder progress).
	// With a measured rate, on loopback, the machine's CPU rather than the seeders bounds
	// the time: see README.
	Bound      float64 `json:"bound_seconds"`
	BoundRate  int64   `json:"bound_rate"`
	BoundFrom  string  `json:"bound_from"`
	BoundRatio float64 `json:"bound_ratio"`
	// Discovery is what finding peers cost the nodes, from their start (bootstrap included),
	// as their adapters count it (see peer.SearchStats); DiscoveryPerNode is its mean.
	Discovery        peer.SearchStats `json:"discovery"`
	DiscoveryPerNode Cost             `json:"discovery_per_node"`
	Failures         []Failure        `json:"failures"`
	PerNode          []NodeResult     `json:"per_node"`
}

// Spread is the 50th and 95th percentiles (interpolated) and the maximum of N values.
type Spread struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// Cost is peer.SearchStats averaged over nodes.
type Cost struct {
	Announces      float64 `json:"announces"`
	Lookups        float64 `json:"lookups"`
	Sent           float64 `json:"sent"`
	Received       float64 `json:"received"`
	NodesContacted float64 `json:"nodes_contacted"`
	PeersFound     float64 `json:"peers_found"`
}

// Failure is a node that does not hold what it should, and why.
type Failure struct {
	Node   int    `json:"node"`
	Addr   string `json:"addr"`
	Reason string `json:"reason"`
}

// NodeResult is one node's part.
type NodeResult struct {
	Node int    `json:"node"`
	Addr string `json:"addr"`
	Role string `json:"role"` // "seeder" or "leecher"
	// State is "seeding", "complete", "killed", "failed" or "incomplete".
	State string `json:"state"`
	// Completed is what the node held at the end (or when it was killed).
	Completed  int64            `json:"completed"`
	FirstPeer  float64          `json:"first_peer_seconds,omitempty"`
	Seconds    float64          `json:"seconds,omitempty"` // download time, when complete
	Downloaded int64            `json:"downloaded"`
	Uploaded   int64            `json:"uploaded"`
	Discovery  peer.SearchStats `json:"discovery"`
	// Path is where the node's copy is (the original, for a seeder).
	Path string `json:"-"`
}

// add counts one node in.
func (r *Report) add(n NodeResult) {
	r.PerNode = append(r.PerNode, n)
	r.Nodes++
	r.Discovery.Add(n.Discovery)
	if n.Role == "seeder" {
		r.Seeders++
		return
	}
	r.Leechers++
	switch n.State {
	case "complete":
		r.Completed++
	case "killed":
		r.Killed++
	}
}

// finish works out the spreads, the means and the verdict, once every node is in.
func (r *Report) finish(failures []Failure) {
	var first, done []float64
	for _, n := range r.PerNode {
		if n.Role != "leecher" {
			continue
		}
		if n.FirstPeer > 0 {
			first = append(first, n.FirstPeer)
		}
		if n.State == "complete" {
			done = append(done, n.Seconds)
		}
	}
	r.FirstPeer, r.Complete = spread(first), spread(done)
	if r.Nodes > 0 {
		d, k := r.Discovery, float64(r.Nodes)
		r.DiscoveryPerNode = Cost{
			Announces: float64(d.Announces) / k, Lookups: float64(d.Lookups) / k,
			Sent: float64(d.Sent) / k, Received: float64(d.Received) / k,
			NodesContacted: float64(d.NodesContacted) / k, PeersFound: float64(d.PeersFound) / k,
		}
	}
	r.Failures = failures
	if r.Failures == nil {
		r.Failures = []Failure{} // [] rather than null in JSON
	}
	r.Failed = len(failures)
	alive := r.Leechers - r.Killed
	r.OK = len(failures) == 0 && r.Verified == alive
	if r.OK {
		return
	}
	r.Reason = fmt.Sprintf("%d of %d leechers left alive hold the verified content", r.Verified, alive)
	if len(failures) > 0 {
		f := failures[0]
		r.Reason += fmt.Sprintf("; node %d (%s): %s", f.Node, f.Addr, f.Reason)
		if len(failures) > 1 {
			r.Reason += fmt.Sprintf(" (and %d more)", len(failures)-1)
		}
	}
}

// sample is what a seeder had uploaded at a time.
type sample struct {
	at time.Time
	up int64
}

// boundWindow is the least span over which a seeder's measured upload rate is taken.
const boundWindow = time.Second

// bound works out the seeders' upload bound, from the cap every node has (upRate) or the
// seeders' progress.
func (r *Report) bound(upRate int64, upload map[*job][]sample) {
	if r.Size > 0 {
		r.SeederUpload = float64(r.UploadedBySeeders) / float64(r.Size)
	}
	if upRate > 0 && r.Seeders > 0 {
		r.BoundRate, r.BoundFrom = upRate*int64(r.Seeders), "upload-rate"
	} else {
		for _, ss := range upload {
			r.BoundRate += peakRate(ss)
		}
		r.BoundFrom = "measured"
	}
	if r.BoundRate > 0 {
		r.Bound = float64(r.Size) / float64(r.BoundRate)
		r.BoundRatio = r.Seconds / r.Bound
	}
}

// peakRate is the highest rate, in bytes per second, between two samples at least
// boundWindow apart with none between them that are.
func peakRate(ss []sample) int64 {
	var best float64
	j := 0
	for k := range ss {
		for j+1 < k && ss[k].at.Sub(ss[j+1].at) >= boundWindow {
			j++
		}
		if dt := ss[k].at.Sub(ss[j].at); dt >= boundWindow {
			best = max(best, float64(ss[k].up-ss[j].up)/dt.Seconds())
		}
	}
	return int64(best)
}

// spread summarizes xs.
func spread(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Spread{N: len(s), P50: quantile(s, 0.50), P95: quantile(s, 0.95), Max: s[len(s)-1]}
}

// quantile of sorted xs, interpolated linearly between the closest ranks.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// WriteText writes the report for a person, a dozen lines.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	files := "1 file"
	if r.Files != 1 {
		files = fmt.Sprintf("%d files", r.Files)
	}
	fmt.Fprintf(&b, "swarm       %d nodes by %s: %d %s, %d %s; %s, %s in %s, %d pieces\n", r.Nodes, r.Mode,
		r.Seeders, plural(r.Seeders, "seeder"), r.Leechers, plural(r.Leechers, "leecher"), r.Name, meta.SizeText(r.Size), files, r.Pieces)
	alive := r.Leechers - r.Killed
	verdict := fmt.Sprintf("ok: all %d %s left alive hold the content, sha256 verified", alive, plural(alive, "leecher"))
	if !r.OK {
		verdict = "FAILED: " + r.Reason
	}
	fmt.Fprintf(&b, "result      %s\n", verdict)
	when := fmt.Sprintf("the last done %.2f s after the start", r.Seconds)
	if r.Completed == 0 {
		when = fmt.Sprintf("stopped %.2f s after the start", r.Seconds)
	}
	fmt.Fprintf(&b, "            %d completed, %d killed, %d failed; %s\n", r.Completed, r.Killed, r.Failed, when)
	spreadLine := func(label string, s Spread, of string) {
		if s.N == 0 {
			fmt.Fprintf(&b, "%-11s none\n", label)
			return
		}
		fmt.Fprintf(&b, "%-11s p50 %.2f s   p95 %.2f s   max %.2f s   (%d %s)\n", label, s.P50, s.P95, s.Max, s.N, of)
	}
	spreadLine("first peer", r.FirstPeer, plural(r.FirstPeer.N, "leecher"))
	spreadLine("complete", r.Complete, plural(r.Complete.N, "leecher"))
	up := r.UploadedBySeeders + r.UploadedByLeechers
	fmt.Fprintf(&b, "uploaded    by seeders %s (%.0f%%), by leechers to each other %s (%.0f%%)\n",
		meta.SizeText(r.UploadedBySeeders), pct(r.UploadedBySeeders, up), meta.SizeText(r.UploadedByLeechers), pct(r.UploadedByLeechers, up))
	fmt.Fprintf(&b, "seeders     sent %.2fx the content (each leecher serving the others keeps this near 1)\n", r.SeederUpload)
	if r.Bound > 0 {
		from := fmt.Sprintf("--upload-rate %s/s", meta.SizeText(r.BoundRate/int64(max(r.Seeders, 1))))
		if r.BoundFrom == "measured" {
			from = fmt.Sprintf("the seeders' peak upload, %s/s over a second", meta.SizeText(r.BoundRate))
		}
		fmt.Fprintf(&b, "bound       %.2f s to send the content once at %s; took %.2fx that\n", r.Bound, from, r.BoundRatio)
	}
	d, p := r.Discovery, r.DiscoveryPerNode
	fmt.Fprintf(&b, "discovery   %d messages sent, %d received; %d lookups, %d announces, %d peers found\n",
		d.Sent, d.Received, d.Lookups, d.Announces, d.PeersFound)
	fmt.Fprintf(&b, "            per node %.1f sent, %.1f received, %.1f lookups\n", p.Sent, p.Received, p.Lookups)
	var killed []string
	for _, n := range r.PerNode {
		if n.State == "killed" {
			killed = append(killed, fmt.Sprintf("%d (%s, at %.0f%%)", n.Node, n.Addr, pct(n.Completed, r.Size)))
		}
	}
	if len(killed) > 0 {
		fmt.Fprintf(&b, "killed      %s\n", strings.Join(killed, ", "))
	}
	for i, f := range r.Failures {
		if i == 10 {
			fmt.Fprintf(&b, "            ... and %d more\n", len(r.Failures)-i)
			break
		}
		fmt.Fprintf(&b, "failed      node %d (%s): %s\n", f.Node, f.Addr, f.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func pct(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// verify checks every copy against the original, file by file, a few at a time; it returns
// why each copy that differs does.
func verify(original string, copies []string) (map[string]string, error) {
	want, err := sums(original)
	if err != nil {
		return nil, fmt.Errorf("hashing the original: %w", err)
	}
	bad := make(map[string]string)
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(copies)) {
		wg.Go(func() {
			for c := range work {
				if why := differs(want, c); why != "" {
					mu.Lock()
					bad[c] = why
					mu.Unlock()
				}
			}
		})
	}
	for _, c := range copies {
		work <- c
	}
	close(work)
	wg.Wait()
	return bad, nil
}

// differs says how the copy at path differs from want, or "".
func differs(want map[string][32]byte, path string) string {
	got, err := sums(path)
	if err != nil {
		return err.Error()
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%s holds %d files, want %d", path, len(got), len(want))
	}
	for name, sum := range want {
		g, ok := got[name]
		switch {
		case !ok:
			return fmt.Sprintf("%s is missing", filepath.Join(path, name))
		case g != sum:
			return fmt.Sprintf("sha256 of %s differs from the original", filepath.Join(path, name))
		}
	}
	return ""
}

// sums is the sha256 of the file at path, or of every file under the folder at path, by path
// relative to it ("." for a single file).
func sums(path string) (map[string][32]byte, error) {
	m := make(map[string][32]byte)
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		m[rel], err = fileSum(p)
		return err
	})
	return m, err
}

// fileSum is the sha256 of the file at path.
func fileSum(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
