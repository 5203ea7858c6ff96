package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
)

// defaultFloodListen is the bare overlay node's usual address, on every interface.
const defaultFloodListen = ":6882"

func floodCommand() *cli.Command {
	return &cli.Command{
		Name:  "flood",
		Usage: "run a bare flood overlay node until interrupted: a bootstrap point for --discovery flood",
		Description: "Prints its address HOST:PORT on stdout; give it to others with --flood-peers IP:PORT.\n" +
			"Without --flood-peers the node joins nobody: it starts an overlay of its own.\n" +
			"It holds no torrents: it passes queries and hits on, and tells joining nodes of others.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: defaultFloodListen, Usage: "TCP address `HOST:PORT` (empty host: every interface; port 0: any free port)"},
			&cli.StringSliceFlag{Name: "flood-peers", Usage: "join through the overlay node at `IP:PORT` (repeatable, or a comma list)"},
			&cli.IntFlag{Name: "flood-degree", Value: flood.DefaultDegree, Usage: "keep between `D` and 2D neighbours"},
			&cli.BoolFlag{Name: "json", Usage: "print the start and stop of the node as JSON lines on stdout"},
		}, logFlags("log everything")...),
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := checkServerArgs(cmd); err != nil {
				return err
			}
			listen := cmd.String("listen")
			if _, _, err := peer.SplitListen(listen); err != nil {
				return usageError{fmt.Errorf("--listen: %v", err)}
			}
			cfg, err := floodConfig(cmd)
			if err != nil {
				return err
			}
			return runFlood(ctx, cmd, listen, cfg)
		},
	}
}

// runFlood serves a bare overlay node until ctx ends.
func runFlood(ctx context.Context, cmd *cli.Command, listen string, cfg flood.Config) error {
	stderr := cmd.Root().ErrWriter
	log := newLogger(cmd, stderr)
	cfg.Logger = log
	tr, err := transport.ListenTCP(listen)
	if err != nil {
		return listenError(err, "TCP", listen)
	}
	cfg.Transport = tr
	n, err := flood.New(cfg)
	if err != nil {
		tr.Close()
		return err
	}
	boot := make([]string, len(cfg.Bootstrap))
	for i, b := range cfg.Bootstrap {
		boot[i] = b.String()
	}
	enc := bareNodeStarted(cmd, "flood node", "TCP", n.Addr().String(), boot)
	<-ctx.Done()
	st := n.FloodStats()
	n.Close()
	var sent, recv int64
	for _, v := range st.Sent {
		sent += v
	}
	for _, v := range st.Received {
		recv += v
	}
	if cmd.Bool("json") {
		_ = enc.Encode(struct {
			Event      string        `json:"event"`
			Neighbours int           `json:"neighbours"`
			Sent       int64         `json:"sent"`
			Received   int64         `json:"received"`
			Queries    int64         `json:"queries"`
			Dropped    flood.Dropped `json:"dropped"`
		}{"stop", st.Neighbours, sent, recv, st.QueriesSeen, st.Dropped()})
	} else {
		d := st.Dropped()
		fmt.Fprintf(stderr, "flood node stopped: %d neighbours; it sent %d frames, got %d, and passed on %d queries; it refused %d connections, cut %d off in the handshake and dropped or ignored %d frames\n",
			st.Neighbours, sent, recv, st.QueriesSeen, d.Refused, d.HandshakeTimeouts, d.Total()-d.Refused-d.HandshakeTimeouts)
	}
	return nil
}
