package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// sink shows a node's events to a person (progress bars on stderr) or to a script (JSON
// lines on stdout), and posts the complete event to the --on-complete webhook.
type sink struct {
	ctx     context.Context
	json    *json.Encoder
	stdout  io.Writer
	stderr  io.Writer
	tty     bool
	webhook string
	log     *slog.Logger

	name     string
	bar      *progressbar.ProgressBar
	barKind  string
	lastLine time.Time
	// seeding: the download is complete; progress is shown as a status line.
	seeding     bool
	statusShown bool
}

func newSink(ctx context.Context, jsonOut bool, stdout, stderr io.Writer, webhook string, log *slog.Logger) *sink {
	s := &sink{ctx: ctx, stdout: stdout, stderr: stderr, webhook: webhook, log: log}
	if jsonOut {
		s.json = json.NewEncoder(stdout)
		s.json.SetEscapeHTML(false)
	}
	if f, ok := stderr.(*os.File); ok {
		s.tty = term.IsTerminal(int(f.Fd()))
	}
	return s
}

// emit is called by the node's Run goroutine, one event at a time.
func (s *sink) emit(e peer.Event) {
	if c, ok := e.(peer.Complete); ok && s.webhook != "" {
		if err := peer.PostEvent(s.ctx, s.webhook, c); err != nil {
			s.log.Warn("on-complete webhook failed", "url", s.webhook, "err", err)
		}
	}
	if s.json != nil {
		_ = s.json.Encode(e)
		return
	}
	switch e := e.(type) {
	case peer.Start:
		s.name = e.Name
		fmt.Fprintf(s.stderr, "%s  %s in %d pieces  listening on %s\n", e.Name, meta.SizeText(e.Size), e.Pieces, e.Listen)
	case peer.Verify:
		s.show("verify", "", e.Checked, e.Size)
	case peer.Progress:
		if s.seeding {
			s.status(fmt.Sprintf("seeding %s: %d peers, up %s/s, uploaded %s (Ctrl-C to stop)",
				s.name, e.Peers, meta.SizeText(e.UpRate), meta.SizeText(e.Uploaded)))
			return
		}
		s.show("download", fmt.Sprintf("peers %-3d", e.Peers), e.Completed, e.Size)
	case peer.Complete:
		s.finish()
		rate := float64(e.Downloaded) / max(e.Seconds, 1e-3)
		if e.Downloaded == 0 {
			fmt.Fprintf(s.stderr, "verified: %s, %s on disk matches the torrent\n", s.name, meta.SizeText(e.Size))
		} else {
			fmt.Fprintf(s.stderr, "complete: %s, %s verified in %.1fs (read %s from peers this run, %s/s)\n",
				s.name, meta.SizeText(e.Size), e.Seconds, meta.SizeText(e.Downloaded), meta.SizeText(int64(rate)))
		}
		if e.PiecesFailed > 0 {
			fmt.Fprintf(s.stderr, "%d %s failed the hash check and were fetched again; %d %s banned\n",
				e.PiecesFailed, plural(int(e.PiecesFailed), "piece"), e.PeersBanned, plural(e.PeersBanned, "peer"))
		}
		s.seeding = true
		s.lastLine = time.Time{}
	case peer.Ban:
		s.above(fmt.Sprintf("banned %s: it sent data that failed the hash check (pieces %s)", e.IP, pieceList(e.Pieces)))
	case peer.Stop:
		s.endStatus()
		fmt.Fprintf(s.stderr, "stopped seeding (%s), uploaded %s\n", e.Reason, meta.SizeText(e.Uploaded))
	case peer.Error:
		s.finish()
	}
}

// above prints a line of its own, above the progress bar or status line if one is shown.
func (s *sink) above(line string) {
	if s.tty && (s.bar != nil || s.statusShown) {
		fmt.Fprint(s.stderr, "\r\x1b[K")
		s.statusShown = false
	}
	fmt.Fprintln(s.stderr, line)
}

// pieceList shows piece indexes, the first ten of them.
func pieceList(ps []int) string {
	if len(ps) == 0 {
		return "none known"
	}
	parts := make([]string, 0, 11)
	for i, p := range ps {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(ps)-10))
			break
		}
		parts = append(parts, strconv.Itoa(p))
	}
	return strings.Join(parts, ", ")
}

// status keeps one line of text up to date: rewritten in place on a terminal, printed every
// 30 seconds otherwise.
func (s *sink) status(line string) {
	if s.tty {
		fmt.Fprintf(s.stderr, "\r\x1b[K%s", line)
		s.statusShown = true
		return
	}
	if time.Since(s.lastLine) >= 30*time.Second {
		s.lastLine = time.Now()
		fmt.Fprintln(s.stderr, line)
	}
}

func (s *sink) endStatus() {
	if s.statusShown {
		fmt.Fprintln(s.stderr)
		s.statusShown = false
	}
}

// show updates the bar of the given kind, starting a new one when the kind changes. Without a
// terminal it prints a plain line every five seconds instead.
func (s *sink) show(kind, desc string, done, total int64) {
	if !s.tty {
		if time.Since(s.lastLine) >= 5*time.Second || (done == total && kind == "verify") {
			s.lastLine = time.Now()
			fmt.Fprintf(s.stderr, "%s: %s / %s (%.0f%%) %s\n", kind, meta.SizeText(done), meta.SizeText(total),
				100*float64(done)/float64(max(total, 1)), strings.TrimSpace(desc))
		}
		return
	}
	if s.bar == nil || s.barKind != kind {
		s.finish()
		s.barKind = kind
		s.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(s.stderr),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(s.stderr) }),
		)
	}
	s.bar.Describe(desc)
	_ = s.bar.Set64(done)
}

func (s *sink) finish() {
	if s.bar != nil {
		_ = s.bar.Finish()
		s.bar = nil
	}
}

// fail reports a failure as an error event in JSON mode; main prints it for a person.
func (s *sink) fail(err error) {
	s.finish()
	if s.json != nil && err != nil {
		_ = s.json.Encode(peer.Error{Event: "error", Message: err.Error()})
	}
}

// bareNodeStarted tells that a bare node (shoal dht, shoal flood) is up: its address alone on
// stdout and what it joins on stderr, or one JSON "listening" line. It returns the encoder
// for the node's later JSON lines.
func bareNodeStarted(cmd *cli.Command, kind, network, addr string, boot []string) *json.Encoder {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if cmd.Bool("json") {
		_ = enc.Encode(struct {
			Event     string   `json:"event"`
			Addr      string   `json:"addr"`
			Bootstrap []string `json:"bootstrap"`
		}{"listening", addr, boot})
		return enc
	}
	fmt.Fprintln(stdout, addr)
	joins := "starting a network of its own"
	if len(boot) > 0 {
		joins = "joining through " + strings.Join(boot, ", ")
	}
	fmt.Fprintf(stderr, "%s listening on %s %s, %s (Ctrl-C to stop)\n", kind, network, addr, joins)
	return enc
}

// listenError says in one line why a socket could not be opened on addr.
func listenError(err error, network, addr string) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("listen on %s: %s port already in use (choose another with --listen)", addr, network)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("listen on %s: no such address on this machine", addr)
	}
	return err
}
