package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

func getCommand() *cli.Command {
	return &cli.Command{
		Name:      "get",
		Usage:     "download a torrent, verify every piece, then seed it",
		ArgsUsage: "FILE.torrent|MAGNET|INFOHASH",
		Flags: append(nodeFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: ".", Usage: "download into `DIR`"},
			&cli.StringFlag{Name: "seed-time", Usage: "after completing, seed for `DURATION` (0: exit at once; default: until interrupted)"},
			&cli.FloatFlag{Name: "seed-ratio", Usage: "after completing, stop once uploaded/size reaches `RATIO`"},
		),
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			arg, err := oneArg(cmd, "torrent")
			if err != nil {
				return err
			}
			seedTime, err := parseSeedTime(cmd.String("seed-time"))
			if err != nil {
				return err
			}
			ratio := cmd.Float("seed-ratio")
			if ratio < 0 {
				return usageError{fmt.Errorf("--seed-ratio %v: must be 0 or more", ratio)}
			}
			if ratio > 0 && cmd.String("seed-time") == "" {
				seedTime = -1 // the ratio alone decides
			}
			src, err := meta.Load(arg)
			if err != nil {
				return err
			}
			return runTorrent(ctx, cmd, src,
				peer.AddOptions{Dir: cmd.String("output")},
				peer.RunOptions{SeedTime: seedTime, SeedRatio: ratio})
		},
	}
}
