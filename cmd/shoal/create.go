package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer/meta"
)

func createCommand() *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "make a .torrent for a file or folder and print its magnet link",
		ArgsUsage: "PATH",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the torrent to `FILE` (default: NAME.torrent here)"},
			&cli.StringSliceFlag{Name: "announce", Aliases: []string{"a"}, Usage: "tracker `URL` (repeatable; each is its own tier)"},
			&cli.StringFlag{Name: "piece-length", Usage: "piece `SIZE`, a power of two from 16KiB to 64MiB (default: from the size)"},
			&cli.BoolFlag{Name: "private", Usage: "private torrent (BEP 27): peers only from its trackers"},
			&cli.StringFlag{Name: "comment", Usage: "free `TEXT` stored in the torrent"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			path, err := oneArg(cmd, "PATH")
			if err != nil {
				return err
			}
			opts, err := createOptions(cmd)
			if err != nil {
				return err
			}
			opts.Private = cmd.Bool("private")
			opts.Comment = cmd.String("comment")
			src, err := createWithProgress(cmd, path, opts)
			if err != nil {
				return err
			}
			out := cmd.String("output")
			if out == "" {
				out = src.Name + ".torrent"
			}
			if err := meta.WriteTorrent(src, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.Root().ErrWriter, "wrote %s: %s, %d pieces of %s\n", out,
				meta.SizeText(src.Info.TotalLength()), src.Info.NumPieces(), meta.SizeText(src.Info.PieceLength))
			fmt.Fprintln(cmd.Root().Writer, meta.Magnet(src))
			return nil
		},
	}
}

// createOptions reads the flags create and seed share.
func createOptions(cmd *cli.Command) (meta.CreateOptions, error) {
	opts := meta.CreateOptions{CreatedBy: "shoal/" + version}
	if s := cmd.String("piece-length"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return opts, usageError{fmt.Errorf("--piece-length: %v", err)}
		}
		if err := meta.CheckPieceLength(n); err != nil {
			return opts, usageError{err}
		}
		opts.PieceLength = n
	}
	for _, a := range cmd.StringSlice("announce") {
		opts.Announce = append(opts.Announce, strings.TrimSpace(a))
	}
	return opts, nil
}

// createWithProgress hashes path into a torrent, with a bar on a terminal.
func createWithProgress(cmd *cli.Command, path string, opts meta.CreateOptions) (*meta.Source, error) {
	stderr := cmd.Root().ErrWriter
	s := newSink(context.Background(), false, nil, stderr, "", nil)
	if s.tty && !cmd.Bool("quiet") && !cmd.Bool("json") {
		var bar *progressbar.ProgressBar
		opts.Progress = func(done, total int64) {
			if bar == nil {
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr),
					progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30),
					progressbar.OptionThrottle(100*time.Millisecond),
					progressbar.OptionSetDescription("hashing "+filepath.Base(path)),
					progressbar.OptionClearOnFinish())
			}
			_ = bar.Set64(done)
		}
		defer func() {
			if bar != nil {
				_ = bar.Finish()
			}
		}()
	}
	return meta.Create(path, opts)
}
