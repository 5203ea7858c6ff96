package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/tracker"
)

// defaultTrackerListen is the usual BitTorrent tracker port, on every interface.
const defaultTrackerListen = ":6969"

func trackerCommand() *cli.Command {
	return &cli.Command{
		Name:  "tracker",
		Usage: "run an HTTP BitTorrent tracker until interrupted",
		Description: "Prints its announce URL on stdout; put it in torrents with shoal create --announce URL.\n" +
			"GET / is a status page, /stats the same as JSON; /scrape answers scrapes (BEP 48).\n" +
			"Peers are listed at the address their announce came from; the ip parameter is ignored.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: defaultTrackerListen, Usage: "HTTP address `HOST:PORT` (empty host: every interface; port 0: any free port)"},
			&cli.StringFlag{Name: "allow", Usage: "serve only the info-hashes in `FILE` (40 hex digits a line, # comments): a private tracker"},
			&cli.DurationFlag{Name: "interval", Value: tracker.DefaultInterval, Usage: "clients announce every `DURATION`; a peer silent for two intervals is dropped"},
			&cli.BoolFlag{Name: "json", Usage: "print the start and stop of the tracker as JSON lines on stdout"},
		}, logFlags("log every refused request too")...),
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := checkServerArgs(cmd); err != nil {
				return err
			}
			cfg, err := trackerConfig(cmd)
			if err != nil {
				return err
			}
			return runTracker(ctx, cmd, cfg)
		},
	}
}

// trackerConfig turns the flags into the tracker's configuration.
func trackerConfig(cmd *cli.Command) (tracker.Config, error) {
	cfg := tracker.Config{Interval: cmd.Duration("interval")}
	if cfg.Interval < time.Second {
		return cfg, usageError{fmt.Errorf("--interval %v: must be at least 1s", cfg.Interval)}
	}
	if _, _, err := peer.SplitListen(cmd.String("listen")); err != nil {
		return cfg, usageError{fmt.Errorf("--listen: %v", err)}
	}
	if f := cmd.String("allow"); f != "" {
		hs, err := tracker.ReadAllowFile(f)
		if err != nil {
			return cfg, fmt.Errorf("--allow: %w", err)
		}
		if len(hs) == 0 {
			return cfg, fmt.Errorf("--allow: %s lists no info-hashes: the tracker would refuse every torrent", f)
		}
		cfg.Allow = hs
	}
	return cfg, nil
}

// runTracker serves the tracker until ctx ends, then shuts the HTTP server down gracefully.
func runTracker(ctx context.Context, cmd *cli.Command, cfg tracker.Config) error {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	log := newLogger(cmd, stderr)
	cfg.Logger = log
	srv, err := tracker.New(cfg)
	if err != nil {
		return err
	}
	listen := cmd.String("listen")
	l, err := net.Listen("tcp", listen)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen on %s: port already in use (choose another with --listen)", listen)
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return fmt.Errorf("listen on %s: no such address on this machine", listen)
		}
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	bound := l.Addr().(*net.TCPAddr)
	host := bound.IP.String()
	if bound.IP.IsUnspecified() {
		host = "127.0.0.1" // every interface: this one surely works here
	}
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(bound.Port))
	if cmd.Bool("json") {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(map[string]any{"event": "start", "announce": base + "/announce", "scrape": base + "/scrape",
			"status": base + "/", "listen": l.Addr().String(), "interval": cfg.Interval.Seconds(), "private": cfg.Allow != nil})
		defer func() {
			st := srv.Stats()
			_ = enc.Encode(map[string]any{"event": "stop", "announces": st.Announces, "scrapes": st.Scrapes,
				"failures": st.Failures, "conns_refused": st.ConnsRefused, "torrents": st.Torrents, "peers": st.Peers})
		}()
	} else {
		fmt.Fprintln(stdout, base+"/announce")
		private := ""
		if cfg.Allow != nil {
			private = fmt.Sprintf(", private: %d torrents allowed", len(cfg.Allow))
		}
		fmt.Fprintf(stderr, "tracker listening on %s, interval %v%s; status page %s/ (Ctrl-C to stop)\n",
			l.Addr(), cfg.Interval, private, base)
		if bound.IP.IsUnspecified() {
			fmt.Fprintf(stderr, "other machines announce to http://THIS-MACHINE:%d/announce\n", bound.Port)
		}
		defer func() {
			st := srv.Stats()
			fmt.Fprintf(stderr, "tracker stopped: %d announces and %d scrapes served, %d refused\n",
				st.Announces, st.Scrapes, st.Failures)
		}()
	}

	// Timeouts, a header size limit and a bound on open connections (see tracker.HTTPServer).
	hs := srv.HTTPServer(slog.NewLogLogger(log.Handler(), slog.LevelDebug))
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Run(sweepCtx) })
	defer func() { stopSweep(); wg.Wait() }()

	served := make(chan error, 1)
	go func() { served <- hs.Serve(srv.Listener(l)) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(shutCtx)
	<-served // http.ErrServerClosed
	if err != nil {
		return fmt.Errorf("stopping the tracker: %w", err)
	}
	return nil
}
