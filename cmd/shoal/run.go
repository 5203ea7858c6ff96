package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// runTorrent starts a node from the shared flags, adds src and runs it until it is done.
func runTorrent(ctx context.Context, cmd *cli.Command, src *meta.Source, add peer.AddOptions, run peer.RunOptions) (err error) {
	stdout, stderr := cmd.Root().Writer, cmd.Root().ErrWriter
	log := newLogger(cmd, stderr)
	cfg, err := nodeConfig(cmd)
	if err != nil {
		return err
	}
	cfg.Logger = log
	stopProfiles, err := startProfiles(cmd)
	if err != nil {
		return err
	}
	defer func() {
		// Deferred first, so it runs last: after the node has closed.
		if perr := stopProfiles(); perr != nil && err == nil {
			err = perr
		}
	}()
	if add.Peers, err = directPeers(cmd); err != nil {
		return err
	}
	out := newSink(ctx, cmd.Bool("json"), stdout, stderr, cmd.String("on-complete"), log)
	defer func() { out.fail(err) }()
	start := func() (*peer.Node, error) {
		if cfg.Discovery, err = discoveryAdapters(cmd, cfg); err != nil {
			return nil, err
		}
		return peer.New(cfg)
	}
	node, err := start()
	if errors.Is(err, peer.ErrPortInUse) && !cmd.IsSet("listen") {
		log.Warn("default port busy, listening on a free port instead", "port", defaultPort)
		cfg.Listen = ":0"
		node, err = start()
	}
	if err != nil {
		return err
	}
	defer func() {
		if cerr := node.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if add.Seed && !cmd.Bool("json") {
		// The magnet goes to stdout for a person or a script; --json carries it in "start".
		fmt.Fprintln(stdout, meta.Magnet(src))
	}
	t, err := node.Add(src, add)
	if err != nil {
		return err
	}
	err = t.Run(ctx, run, out.emit)
	if errors.Is(err, peer.ErrInterrupted) {
		return errInterrupted
	}
	return err
}
