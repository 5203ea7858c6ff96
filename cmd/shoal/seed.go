package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

func seedCommand() *cli.Command {
	return &cli.Command{
		Name:  "seed",
		Usage: "verify data on disk and seed it until interrupted",
		Description: "PATH is the file or folder to share; shoal makes its torrent unless --torrent names one.\n" +
			"FILE.torrent seeds that torrent's content, found in --dir.",
		ArgsUsage: "PATH|FILE.torrent",
		Flags: append(nodeFlags(),
			&cli.StringFlag{Name: "torrent", Usage: "the .torrent `FILE` describing PATH"},
			&cli.StringFlag{Name: "dir", Aliases: []string{"d"}, Value: ".", Usage: "with FILE.torrent: the `DIR` holding its content"},
			&cli.StringFlag{Name: "piece-length", Usage: "when shoal makes the torrent: piece `SIZE` (default: from the size)"},
			&cli.StringSliceFlag{Name: "announce", Usage: "when shoal makes the torrent: tracker `URL` (repeatable)"},
		),
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			arg, err := oneArg(cmd, "PATH or FILE.torrent")
			if err != nil {
				return err
			}
			src, add, err := seedSource(cmd, arg)
			if err != nil {
				return err
			}
			add.Seed = true
			return runTorrent(ctx, cmd, src, add, peer.RunOptions{SeedTime: -1})
		},
	}
}

// seedSource works out which torrent to seed and where its content is.
func seedSource(cmd *cli.Command, arg string) (*meta.Source, peer.AddOptions, error) {
	var add peer.AddOptions
	st, err := os.Stat(arg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, add, fmt.Errorf("%s: no such file or folder", arg)
		}
		return nil, add, err
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return nil, add, err
	}
	if tf := cmd.String("torrent"); tf != "" {
		src, err := meta.LoadFile(tf)
		if err != nil {
			return nil, add, err
		}
		return src, peer.AddOptions{Dir: filepath.Dir(abs), Name: filepath.Base(abs)}, nil
	}
	if !st.IsDir() && filepath.Ext(arg) == ".torrent" {
		src, err := meta.LoadFile(arg)
		if err != nil {
			return nil, add, err
		}
		return src, peer.AddOptions{Dir: cmd.String("dir")}, nil
	}
	opts, err := createOptions(cmd)
	if err != nil {
		return nil, add, err
	}
	src, err := createWithProgress(cmd, arg, opts)
	if err != nil {
		return nil, add, err
	}
	// Making the torrent hashed every byte: no second pass before seeding.
	return src, peer.AddOptions{Dir: filepath.Dir(abs), Name: filepath.Base(abs), Hashed: true}, nil
}
