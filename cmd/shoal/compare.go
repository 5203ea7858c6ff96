package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/shoalp2p/shoal/swarm/compare"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:  "compare",
		Usage: "measure the cost of search: DHT lookups against flooding and random walks, at each network size",
		Description: "Starts N discovery nodes (DHT servers, or flood overlay nodes) on loopback addresses\n" +
			"127.0.x.y, or over an in-memory network with --sim; puts the content on --replication of\n" +
			"them and runs --lookups searches from the others. Prints a table (measured, and theory in\n" +
			"brackets) on stdout, or a JSON array with --json; --csv and --plot write the rows to files.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "nodes", Value: "100,1000", Usage: "network sizes, a comma `LIST` (each at least 2)"},
			&cli.StringFlag{Name: "modes", Value: strings.Join(compare.Modes, ","), Usage: "search methods, a comma `LIST` of " + strings.Join(compare.Modes, ", ")},
			&cli.StringFlag{Name: "ttl", Value: "3,5,7", Usage: "flood TTLs (hops) and walk step budgets, a comma `LIST` of 1..7; each is a row"},
			&cli.IntFlag{Name: "degree", Value: compare.DefaultDegree, Usage: "each overlay node keeps `D`..2D neighbours (3 or more)"},
			&cli.IntFlag{Name: "walkers", Value: compare.DefaultWalkers, Usage: "random walkers a lookup sends in mode walk"},
			&cli.FloatFlag{Name: "replication", Value: compare.DefaultReplication, Usage: "`SHARE` of nodes holding the content (0 < share <= 1; at least one node)"},
			&cli.IntFlag{Name: "lookups", Value: compare.DefaultLookups, Usage: "lookups a row, each from a random node without the content"},
			&cli.BoolFlag{Name: "sim", Usage: "run the nodes over an in-memory network with a latency model instead of loopback sockets"},
			&cli.DurationFlag{Name: "latency", Value: 20 * time.Millisecond, Usage: "with --sim: each message's one-way delay"},
			&cli.DurationFlag{Name: "jitter", Value: 10 * time.Millisecond, Usage: "with --sim: up to this much more delay, uniform"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random `SEED`: node IDs, topology, placement and lookup origins"},
			&cli.BoolFlag{Name: "json", Usage: "print the rows as one JSON array on stdout instead of a table"},
			&cli.StringFlag{Name: "csv", Usage: "also write the rows as CSV to `FILE`"},
			&cli.StringFlag{Name: "plot", Usage: "also draw a chart to `FILE` (.svg or .png): messages per lookup and success rate against N"},
		}, logFlags("log everything, the nodes' messages included")...),
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := compareConfig(cmd)
			if err != nil {
				return err
			}
			return runCompare(ctx, cmd, cfg)
		},
	}
}

// compareConfig turns the flags into an experiment, refusing what cannot run before
// anything starts.
func compareConfig(cmd *cli.Command) (compare.Config, error) {
	var cfg compare.Config
	if cmd.NArg() > 0 {
		return cfg, usageError{fmt.Errorf("compare takes no arguments, got %q (see shoal compare --help)", cmd.Args().First())}
	}
	if err := checkLogFlags(cmd); err != nil {
		return cfg, err
	}
	var err error
	if cfg.Nodes, err = intList(cmd, "nodes", 2, 1<<20, "100,1000"); err != nil {
		return cfg, err
	}
	if cfg.TTLs, err = intList(cmd, "ttl", 1, 7, "3,5,7"); err != nil {
		return cfg, err
	}
	for _, m := range strings.Split(cmd.String("modes"), ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(compare.Modes, m) {
			return cfg, usageError{fmt.Errorf("--modes: unknown mode %q (want %s)", m, strings.Join(compare.Modes, ", "))}
		}
		if !slices.Contains(cfg.Modes, m) {
			cfg.Modes = append(cfg.Modes, m)
		}
	}
	cfg.Degree, cfg.Walkers, cfg.Lookups = cmd.Int("degree"), cmd.Int("walkers"), cmd.Int("lookups")
	cfg.Replication = cmd.Float("replication")
	switch {
	case cfg.Degree < 3:
		return cfg, usageError{fmt.Errorf("--degree %d: want 3 or more", cfg.Degree)}
	case cfg.Walkers < 1:
		return cfg, usageError{fmt.Errorf("--walkers %d: want 1 or more", cfg.Walkers)}
	case cfg.Lookups < 1:
		return cfg, usageError{fmt.Errorf("--lookups %d: want 1 or more", cfg.Lookups)}
	case !(cfg.Replication > 0 && cfg.Replication <= 1):
		return cfg, usageError{fmt.Errorf("--replication %v: want a share above 0 and at most 1 (0.01 is 1%%)", cfg.Replication)}
	}
	cfg.Sim = cmd.Bool("sim")
	for _, name := range []string{"latency", "jitter"} {
		if cmd.IsSet(name) && !cfg.Sim {
			return cfg, usageError{fmt.Errorf("--%s needs --sim (without it the nodes talk over loopback, with its own latency)", name)}
		}
		if cmd.Duration(name) < 0 {
			return cfg, usageError{fmt.Errorf("--%s %v: cannot be negative", name, cmd.Duration(name))}
		}
	}
	if cfg.Sim {
		cfg.Latency, cfg.Jitter = cmd.Duration("latency"), cmd.Duration("jitter")
	}
	cfg.Seed = cmd.Uint64("seed")
	if p := cmd.String("plot"); p != "" {
		if _, err := compare.PlotFormat(p); err != nil {
			return cfg, usageError{fmt.Errorf("--plot: %v", err)}
		}
		if err := checkWritable(p); err != nil {
			return cfg, usageError{fmt.Errorf("--plot: %v", err)}
		}
	}
	if p := cmd.String("csv"); p != "" {
		if err := checkWritable(p); err != nil {
			return cfg, usageError{fmt.Errorf("--csv: %v", err)}
		}
	}
	return cfg, nil
}

// intList reads a comma list of integers in lo..hi.
func intList(cmd *cli.Command, name string, lo, hi int, example string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(cmd.String(name), ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, usageError{fmt.Errorf("--%s: %q is not a whole number (want a comma list like %s)", name, s, example)}
		}
		if v < lo || v > hi {
			return nil, usageError{fmt.Errorf("--%s: %d is out of range: want %d..%d", name, v, lo, hi)}
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// checkWritable makes sure a file can be written at path later, without leaving anything:
// its folder exists and takes new files, and path is not a folder.
func checkWritable(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a folder", path)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".shoal-write-check-*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot write in %s: %v", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// runCompare runs the experiment with progress on stderr, then shows the rows and writes the
// files. Rows measured before a failure or Ctrl-C are still shown and written.
func runCompare(ctx context.Context, cmd *cli.Command, cfg compare.Config) error {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	cfg.Logger = newLogger(cmd, stderr)
	prog := newCompareProgress(stderr)
	cfg.Progress = prog.update
	jsonOut := cmd.Bool("json")
	net := "loopback sockets, each node on its own 127.0.x.y"
	if cfg.Sim {
		net = fmt.Sprintf("simulated network, %v latency + up to %v jitter", cfg.Latency, cfg.Jitter)
	}
	caption := fmt.Sprintf("content on %v%% of nodes (at least one), overlay degree %d..%d, %d walkers, %d lookups a row, %s, seed %d",
		100*cfg.Replication, cfg.Degree, 2*cfg.Degree, cfg.Walkers, cfg.Lookups, net, cfg.Seed)
	fmt.Fprintf(stderr, "compare %s at %s nodes: %s\n", strings.Join(cfg.Modes, ", "), joinInts(cfg.Nodes), caption)

	rows, err := compare.Run(ctx, cfg, prog.row)
	prog.finish()
	if ctx.Err() != nil && err != nil {
		err = compareInterrupted{len(rows)}
	}
	if len(rows) == 0 {
		return err
	}
	var outErr error
	if jsonOut {
		outErr = compare.WriteJSON(stdout, rows)
	} else {
		fmt.Fprintln(stdout, "# "+caption)
		outErr = compare.WriteTable(stdout, rows)
	}
	if p := cmd.String("csv"); p != "" {
		var buf bytes.Buffer
		e := compare.WriteCSV(&buf, rows)
		if e == nil {
			e = os.WriteFile(p, buf.Bytes(), 0o644)
		}
		if e == nil {
			fmt.Fprintf(stderr, "rows written to %s\n", p)
		}
		outErr = errors.Join(outErr, e)
	}
	if p := cmd.String("plot"); p != "" {
		e := compare.SavePlot(p, rows)
		if e == nil {
			fmt.Fprintf(stderr, "chart written to %s\n", p)
		}
		outErr = errors.Join(outErr, e)
	}
	return errors.Join(err, outErr)
}

// compareInterrupted: Ctrl-C stopped the run before every row was measured (exit status 130).
type compareInterrupted struct{ rows int }

func (e compareInterrupted) Error() string {
	return fmt.Sprintf("compare: interrupted after %d rows", e.rows)
}
func (compareInterrupted) Unwrap() error { return errInterrupted }

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

// compareProgress shows where a run is on stderr: a bar per phase (building a network,
// running a row's lookups) on a terminal, plain lines otherwise. The builders may report
// from several goroutines.
type compareProgress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	phase string
	began time.Time
	last  time.Time
	ended bool
	bar   *progressbar.ProgressBar
}

func newCompareProgress(w io.Writer) *compareProgress {
	p := &compareProgress{w: w}
	if f, ok := w.(*os.File); ok {
		p.tty = term.IsTerminal(int(f.Fd()))
	}
	return p
}

func (p *compareProgress) update(e compare.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	what := e.Mode
	if e.TTL > 0 {
		what = fmt.Sprintf("%s TTL %d", e.Mode, e.TTL)
	}
	verb := "building"
	if e.Phase == "lookup" {
		verb = "lookups"
	}
	phase := fmt.Sprintf("%s, %d nodes: %s", what, e.Nodes, verb)
	if phase != p.phase {
		p.endBar()
		p.phase, p.began, p.last, p.ended = phase, time.Now(), time.Now(), false
		if p.tty {
			p.bar = progressbar.NewOptions(e.Total,
				progressbar.OptionSetWriter(p.w),
				progressbar.OptionSetDescription(fmt.Sprintf("%-32s", phase)),
				progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionShowElapsedTimeOnFinish(),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
			)
		}
	}
	if p.bar != nil {
		_ = p.bar.Set(e.Done)
		return
	}
	switch {
	case e.Done >= e.Total && !p.ended:
		p.ended = true
		fmt.Fprintf(p.w, "%s %d of %d in %.1fs\n", phase, e.Done, e.Total, time.Since(p.began).Seconds())
	case !p.ended && time.Since(p.last) >= 5*time.Second:
		p.last = time.Now()
		fmt.Fprintf(p.w, "%s %d of %d\n", phase, e.Done, e.Total)
	}
}

// row tells a measured row in a line.
func (p *compareProgress) row(r compare.Row) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endBar()
	what := r.Mode
	if r.TTL > 0 {
		what = fmt.Sprintf("%s TTL %d", r.Mode, r.TTL)
	}
	fmt.Fprintf(p.w, "%s, %d nodes: found %.0f%% of the time (theory %.0f%%), %.1f messages a lookup (theory %.0f)\n",
		what, r.Nodes, 100*r.SuccessRate, 100*r.ExpectedSuccess, r.MessagesPerLookup, r.ExpectedMessages)
}

func (p *compareProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.endBar()
}

func (p *compareProgress) endBar() {
	if p.bar != nil {
		if !p.bar.IsFinished() {
			_ = p.bar.Exit()
			fmt.Fprintln(p.w)
		}
		p.bar = nil
	}
	p.phase = ""
}
