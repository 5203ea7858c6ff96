package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"
	"golang.org/x/term"

	"github.com/shoalp2p/shoal/peer/meta"
	"github.com/shoalp2p/shoal/swarm"
)

func swarmCommand() *cli.Command {
	return &cli.Command{
		Name:  "swarm",
		Usage: "run a local test swarm: nodes on loopback share random content, finding each other through one mode",
		Description: "Starts --nodes full nodes in this process, each on its own address 127.0.x.y, joined\n" +
			"through a bootstrap DHT node, overlay node or tracker on 127.0.0.1. The first --seeders\n" +
			"seed --size bytes of random content (a folder of --files files if more than one); all the\n" +
			"others download it at once, finding peers through --mode alone (no addresses given, no\n" +
			"PEX). --churn kills that share of the downloaders midway. Shows a live view on stderr and\n" +
			"a summary on stdout (--json: events and the summary as JSON lines). Exits 0 only when\n" +
			"every node left alive holds the content, each file's sha256 matching the original.",
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "nodes", Value: 16, Usage: fmt.Sprintf("how many nodes (`N`, 2..%d)", swarm.MaxNodes)},
			&cli.StringFlag{Name: "mode", Value: "dht", Usage: "how nodes find each other: " + strings.Join(swarm.Modes, ", ")},
			&cli.IntFlag{Name: "seeders", Value: 1, Usage: "how many nodes seed (the first `K`; at least one node downloads)"},
			&cli.StringFlag{Name: "size", Value: "64MiB", Usage: "size of the content (`SIZE`: 64MiB, 500KiB, 1GB)"},
			&cli.IntFlag{Name: "files", Value: 1, Usage: "one file, or a folder of `K` files totalling --size"},
			&cli.FloatFlag{Name: "churn", Usage: "share of the downloaders killed midway (`FRACTION`, 0 <= f < 1)"},
			&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "give up on downloads not complete after this long"},
			&cli.StringFlag{Name: "download-rate", Usage: "cap each node's download at `RATE` bytes per second (10MiB, 500KiB)"},
			&cli.StringFlag{Name: "upload-rate", Usage: "cap each node's upload at `RATE` bytes per second"},
			&cli.BoolFlag{Name: "in-order", Usage: "leave which pieces each node fetches from whom to the torrent library alone, without shoal's swarm policy (for comparison)"},
			&cli.BoolFlag{Name: "json", Usage: "print events and the summary as JSON lines on stdout instead of the live view"},
		}, logFlags("log everything the nodes say, the torrent library's messages included (by default only errors)")...),
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			plan, err := swarmPlan(cmd)
			if err != nil {
				return err
			}
			return runSwarm(ctx, cmd, plan)
		},
	}
}

// swarmPlan turns the flags into a plan, refusing what cannot run before anything starts.
func swarmPlan(cmd *cli.Command) (swarm.Plan, error) {
	var p swarm.Plan
	if cmd.NArg() > 0 {
		return p, usageError{fmt.Errorf("swarm takes no arguments, got %q (see shoal swarm --help)", cmd.Args().First())}
	}
	if err := checkLogFlags(cmd); err != nil {
		return p, err
	}
	size, err := parseSize(cmd.String("size"))
	if err != nil {
		return p, usageError{fmt.Errorf("--size: %v", err)}
	}
	p = swarm.Plan{
		Config:  swarm.Config{Nodes: cmd.Int("nodes"), Mode: cmd.String("mode"), InOrder: cmd.Bool("in-order")},
		Seeders: cmd.Int("seeders"), Size: size, Files: cmd.Int("files"),
		Churn: cmd.Float("churn"), Timeout: cmd.Duration("timeout"),
	}
	if p.DownloadRate, err = parseRate(cmd, "download-rate"); err != nil {
		return p, err
	}
	if p.UploadRate, err = parseRate(cmd, "upload-rate"); err != nil {
		return p, err
	}
	if p.Mode == "" {
		return p, usageError{fmt.Errorf("--mode is empty: want one of %s", strings.Join(swarm.Modes, ", "))}
	}
	if err := p.Check(); err != nil {
		return p, usageError{err}
	}
	return p, nil
}

// swarmLogger logs errors only, or everything with --verbose: a swarm's nodes warn of a busy
// machine often, which says nothing about the swarm. The torrent library also logs through
// slog's default logger, so it is set too.
func swarmLogger(cmd *cli.Command, w io.Writer) *slog.Logger {
	level := slog.LevelError
	if cmd.Bool("verbose") {
		level = slog.LevelDebug
	}
	l := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(l)
	return l
}

// swarmInterrupted: Ctrl-C stopped the swarm before it was done (exit status 130).
type swarmInterrupted struct{}

func (swarmInterrupted) Error() string { return "interrupted before every download was done" }
func (swarmInterrupted) Unwrap() error { return errInterrupted }

// runSwarm runs the plan, shows it as it goes, and prints the summary.
func runSwarm(ctx context.Context, cmd *cli.Command, p swarm.Plan) error {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	var logTo io.Writer = stderr
	var emit func(swarm.Event)
	var view *swarmView
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	if cmd.Bool("json") {
		emit = func(e swarm.Event) { _ = enc.Encode(e) }
	} else {
		tty, width := false, 0
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			tty = true
			if w, _, err := term.GetSize(int(f.Fd())); err == nil {
				width = w
			}
		}
		view = newSwarmView(stderr, tty, width)
		fmt.Fprintf(stderr, "starting %d nodes by %s on %s..%s, writing %s of random content\n",
			p.Nodes, p.Mode, swarm.Addr(0), swarm.Addr(p.Nodes-1), meta.SizeText(p.Size))
		emit = view.emit
		logTo = view
	}
	p.Logger = swarmLogger(cmd, logTo)
	rep, err := p.Run(ctx, emit)
	if view != nil {
		view.finish()
	}
	if rep != nil {
		if cmd.Bool("json") {
			_ = enc.Encode(rep)
		} else if werr := rep.WriteText(stdout); werr != nil && err == nil {
			err = werr
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return swarmInterrupted{}
	case err != nil:
		if cmd.Bool("json") {
			_ = enc.Encode(struct {
				Event   string `json:"event"`
				Message string `json:"message"`
			}{"error", err.Error()})
		}
		return err
	case !rep.OK:
		return errors.New(rep.Reason)
	}
	return nil
}
