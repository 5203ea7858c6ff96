// Command shoal is a BitTorrent client for the terminal: it creates, inspects, seeds and
// downloads torrents that other clients understand. Each subcommand lives in its own file
// and only turns flags into configuration for the packages that do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v3"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// usageError marks a mistake on the command line: exit status 2.
type usageError struct{ error }

func main() {
	ctx, stop := interruptContext()
	err := newApp(os.Stdout, os.Stderr).Run(ctx, os.Args)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// newApp builds the command tree; tests run it in process with their own writers.
func newApp(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:    "shoal",
		Usage:   "share files peer to peer over BitTorrent",
		Version: version,
		Writer:  stdout, ErrWriter: stderr,
		Commands: []*cli.Command{
			createCommand(), infoCommand(), seedCommand(), getCommand(),
			dhtCommand(), floodCommand(),
			compareCommand(), swarmCommand(),
			trackerCommand(),
		},
		OnUsageError:   onUsageError,
		ExitErrHandler: func(context.Context, *cli.Command, error) {}, // main reports errors
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() > 0 {
				return usageError{fmt.Errorf("unknown command %q (see shoal --help)", cmd.Args().First())}
			}
			return cli.ShowAppHelp(cmd)
		},
	}
}

func onUsageError(_ context.Context, _ *cli.Command, err error, _ bool) error {
	return usageError{err}
}

// exitCode prints err as one line and picks the exit status: 0 ok, 1 failure, 2 usage,
// 130 interrupted.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
	fmt.Fprintln(stderr, "shoal: "+msg)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, errInterrupted):
		return 130
	}
	return 1
}

// interruptContext is cancelled by the first SIGINT or SIGTERM, so that work stops cleanly
// and files are closed; a second one exits at once.
func interruptContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		fmt.Fprintln(os.Stderr, "\nshoal: stopping; press Ctrl-C again to quit at once")
		cancel()
		select {
		case <-sigs:
			os.Exit(130)
		case <-done:
		}
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}

// newLogger logs to stderr: warnings by default, everything from --verbose, only errors
// with --quiet. The torrent library also logs through slog's default logger, so it is set too.
func newLogger(cmd *cli.Command, stderr io.Writer) *slog.Logger {
	level := slog.LevelWarn
	switch {
	case cmd.Bool("verbose"):
		level = slog.LevelDebug
	case cmd.Bool("quiet"):
		level = slog.LevelError
	}
	l := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(l)
	return l
}
