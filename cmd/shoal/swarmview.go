package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/swarm"
)

// Timing of the swarm view.
const (
	swarmRedraw    = 100 * time.Millisecond // at most this often on a terminal
	swarmPlainTick = 5 * time.Second        // a progress line this often otherwise
	swarmLinesMax  = 20                     // past this many nodes, a grid instead of a line each
)

// swarmView shows a running swarm to a person. On a terminal: a bar for the whole swarm and
// a line per node, or past 20 nodes a grid of one cell per node and a count per state, redrawn
// in place. Otherwise: a line per node that completes, is killed or fails, and one for the
// swarm every five seconds. Log lines written to it go above what is redrawn.
type swarmView struct {
	mu    sync.Mutex // guards everything below
	w     io.Writer
	tty   bool
	width int

	launch  swarm.Launch
	nodes   map[int]*nodeState
	order   []int // seeders, then leechers
	began   time.Time
	ended   time.Time // when the last leecher left alive completed or failed
	drawn   int       // lines on screen from the last redraw
	lastOut time.Time
}

// nodeState is what the view knows of one node.
type nodeState struct {
	seeder    bool
	state     string // waiting, fetching, complete, killed, failed, seeding
	completed int64
	peers     int
	down, up  int64 // rates
	uploaded  int64
	seconds   float64 // download time, once complete
	firstPeer float64
	reason    string
}

func newSwarmView(w io.Writer, tty bool, width int) *swarmView {
	if width <= 0 {
		width = 100
	}
	return &swarmView{w: w, tty: tty, width: width, nodes: make(map[int]*nodeState)}
}

// Write prints log lines above the part redrawn in place.
func (v *swarmView) Write(b []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.line(strings.TrimRight(string(b), "\n"))
	v.draw(true)
	return len(b), nil
}

func (v *swarmView) emit(e swarm.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e := e.(type) {
	case swarm.Launch:
		v.launch, v.began = e, time.Now()
		for _, i := range e.Seeders {
			v.nodes[i] = &nodeState{seeder: true, state: "seeding", completed: e.Size}
			v.order = append(v.order, i)
		}
		for _, i := range e.Leechers {
			v.nodes[i] = &nodeState{state: "waiting"}
			v.order = append(v.order, i)
		}
		kills := ""
		if e.Kills > 0 {
			kills = fmt.Sprintf("; %d to be killed midway", e.Kills)
		}
		v.line(fmt.Sprintf("%s: %s in %d %s of %s; %d %s, %d %s%s", e.Name, meta.SizeText(e.Size), e.Pieces,
			plural(e.Pieces, "piece"), meta.SizeText(e.PieceLength), len(e.Seeders), plural(len(e.Seeders), "seeder"),
			len(e.Leechers), plural(len(e.Leechers), "leecher"), kills))
		v.draw(true)
		return
	case swarm.Progress:
		n := v.nodes[e.Node]
		if n == nil {
			return
		}
		n.completed, n.peers, n.down, n.up, n.uploaded = e.Completed, e.Peers, e.DownRate, e.UpRate, e.Uploaded
		if n.state == "waiting" && (e.Peers > 0 || e.Completed > 0) {
			n.state = "fetching"
		}
	case swarm.Complete:
		n := v.nodes[e.Node]
		if n == nil {
			return
		}
		n.state, n.completed, n.seconds, n.firstPeer = "complete", v.launch.Size, e.Seconds, e.FirstPeer
		v.plain(fmt.Sprintf("node %d (%s) complete in %.2f s, first peer after %.2f s", e.Node, e.Addr, e.Seconds, e.FirstPeer))
	case swarm.Killed:
		n := v.nodes[e.Node]
		if n == nil {
			return
		}
		n.state, n.completed = "killed", e.Completed
		v.plain(fmt.Sprintf("node %d (%s) killed holding %.0f%%", e.Node, e.Addr, percent(e.Completed, e.Size)))
	case swarm.Failed:
		n := v.nodes[e.Node]
		if n == nil {
			return
		}
		n.state, n.reason = "failed", e.Reason
		v.plain(fmt.Sprintf("node %d (%s) failed: %s", e.Node, e.Addr, e.Reason))
	}
	if v.ended.IsZero() && v.resolved() {
		v.ended = time.Now()
	}
	v.draw(false)
}

// finish draws the last state.
func (v *swarmView) finish() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.launch.Event == "" {
		return
	}
	v.draw(true)
	if !v.tty {
		v.line(v.total())
	}
}

// line prints a line that stays, above the part redrawn in place.
func (v *swarmView) line(s string) {
	if v.tty {
		v.clear()
	}
	fmt.Fprintln(v.w, s)
}

// plain prints a line only when the view is not redrawn in place.
func (v *swarmView) plain(s string) {
	if !v.tty {
		fmt.Fprintln(v.w, s)
	}
}

// clear moves up over the lines last drawn and erases them.
func (v *swarmView) clear() {
	if v.drawn > 0 {
		fmt.Fprintf(v.w, "\x1b[%dA\x1b[J", v.drawn)
		v.drawn = 0
	}
}

// draw redraws the view in place (at most every swarmRedraw unless now), or without a
// terminal prints the swarm's progress every swarmPlainTick.
func (v *swarmView) draw(now bool) {
	if !now && time.Since(v.lastOut) < swarmRedraw {
		return
	}
	if !v.tty {
		if now || time.Since(v.lastOut) >= swarmPlainTick {
			v.lastOut = time.Now()
			if v.launch.Event != "" && !now {
				fmt.Fprintln(v.w, v.total())
			}
		}
		return
	}
	v.lastOut = time.Now()
	lines := []string{v.total()}
	if len(v.order) <= swarmLinesMax {
		for _, i := range v.order {
			lines = append(lines, v.nodeLine(i))
		}
	} else {
		lines = append(lines, v.grid()...)
	}
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, l := range lines {
		if r := []rune(l); len(r) >= v.width {
			l = string(r[:v.width-1])
		}
		b.WriteString("\r\x1b[K" + l + "\n")
	}
	b.WriteString("\x1b[J")
	io.WriteString(v.w, b.String())
	v.drawn = len(lines)
}

// total is the swarm's line: what the leechers left alive hold of what they want.
func (v *swarmView) total() string {
	var have, want int64
	counts := map[string]int{}
	for _, i := range v.order {
		n := v.nodes[i]
		counts[n.state]++
		if n.seeder || n.state == "killed" {
			continue
		}
		have += n.completed
		want += v.launch.Size
	}
	alive := len(v.launch.Leechers) - counts["killed"]
	s := fmt.Sprintf("swarm %s %3.0f%% of %s  %d/%d complete", bar(have, want, 20), percent(have, want),
		meta.SizeText(want), counts["complete"], alive)
	if counts["killed"] > 0 {
		s += fmt.Sprintf(", %d killed", counts["killed"])
	}
	if counts["failed"] > 0 {
		s += fmt.Sprintf(", %d failed", counts["failed"])
	}
	end := v.ended
	if end.IsZero() {
		end = time.Now()
	}
	return s + fmt.Sprintf("  %.1f s", end.Sub(v.began).Seconds())
}

// resolved says every leecher has completed, been killed or failed.
func (v *swarmView) resolved() bool {
	for _, i := range v.launch.Leechers {
		if s := v.nodes[i].state; s != "complete" && s != "killed" && s != "failed" {
			return false
		}
	}
	return true
}

// nodeLine is one node's line.
func (v *swarmView) nodeLine(i int) string {
	n := v.nodes[i]
	head := fmt.Sprintf("%4d %-15s ", i, v.addr(i))
	switch n.state {
	case "seeding":
		return head + fmt.Sprintf("seeder    up %s/s, sent %s, %d %s", meta.SizeText(n.up), meta.SizeText(n.uploaded), n.peers, plural(n.peers, "peer"))
	case "waiting":
		return head + "looking for peers"
	case "complete":
		return head + fmt.Sprintf("complete in %.2f s (first peer %.2f s), sent %s, up %s/s",
			n.seconds, n.firstPeer, meta.SizeText(n.uploaded), meta.SizeText(n.up))
	case "killed":
		return head + fmt.Sprintf("killed holding %.0f%%", percent(n.completed, v.launch.Size))
	case "failed":
		return head + "failed: " + n.reason
	}
	return head + fmt.Sprintf("%s %3.0f%%  down %s/s  up %s/s  %d %s", bar(n.completed, v.launch.Size, 16),
		percent(n.completed, v.launch.Size), meta.SizeText(n.down), meta.SizeText(n.up), n.peers, plural(n.peers, "peer"))
}

// grid is one cell per node, 50 to a line, and a count per state: S seeding, . looking for
// peers, 0-9 tenths downloaded, # complete, x killed, ! failed.
func (v *swarmView) grid() []string {
	var lines []string
	var b strings.Builder
	counts := map[string]int{}
	for k, i := range v.order {
		n := v.nodes[i]
		counts[n.state]++
		if k > 0 && k%50 == 0 {
			lines = append(lines, b.String())
			b.Reset()
		} else if k > 0 && k%10 == 0 {
			b.WriteByte(' ')
		}
		switch n.state {
		case "seeding":
			b.WriteByte('S')
		case "waiting":
			b.WriteByte('.')
		case "complete":
			b.WriteByte('#')
		case "killed":
			b.WriteByte('x')
		case "failed":
			b.WriteByte('!')
		default:
			b.WriteByte(byte('0' + min(9, 10*n.completed/max(v.launch.Size, 1))))
		}
	}
	lines = append(lines, b.String())
	var parts []string
	for _, s := range []string{"seeding", "waiting", "fetching", "complete", "killed", "failed"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
		}
	}
	return append(lines, strings.Join(parts, "  "), "(S seeder, . no peer yet, 0-9 tenths held, # complete, x killed, ! failed)")
}

func (v *swarmView) addr(i int) string {
	if i < len(v.launch.Addrs) {
		return v.launch.Addrs[i]
	}
	return "?"
}

// bar is a bar of width cells, done of total filled.
func bar(done, total int64, width int) string {
	fill := 0
	if total > 0 {
		fill = int(min(int64(width), done*int64(width)/total))
	}
	return "[" + strings.Repeat("#", fill) + strings.Repeat("-", width-fill) + "]"
}

func percent(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
