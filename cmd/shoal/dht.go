package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/dht"
)

// defaultDHTListen is the usual DHT port, on every interface.
const defaultDHTListen = ":6881"

func dhtCommand() *cli.Command {
	return &cli.Command{
		Name:  "dht",
		Usage: "run a bare DHT node until interrupted: a bootstrap point for a private swarm",
		Description: "Prints its address HOST:PORT on stdout; give it to others with --dht-bootstrap HOST:PORT.\n" +
			"Without --dht-bootstrap the node joins nobody: it starts a network of its own.\n" +
			"Its routing table is saved in --data-dir, so a restarted node rejoins the nodes it knew.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: defaultDHTListen, Usage: "UDP address `HOST:PORT` (empty host: every interface; port 0: any free port)"},
			&cli.StringSliceFlag{Name: "dht-bootstrap", Usage: "join the DHT through the node at `HOST:PORT` (repeatable, or a comma list)"},
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "where shoal keeps its state (the DHT routing table)", Sources: cli.EnvVars("SHOAL_DATA_DIR")},
			&cli.BoolFlag{Name: "json", Usage: "print the start and stop of the node as JSON lines on stdout"},
		}, logFlags("log everything")...),
		OnUsageError: onUsageError,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if err := checkServerArgs(cmd); err != nil {
				return err
			}
			cfg, err := dhtConfig(cmd)
			if err != nil {
				return err
			}
			return runDHT(ctx, cmd, cfg)
		},
	}
}

// dhtConfig turns the flags into the node's configuration.
func dhtConfig(cmd *cli.Command) (dht.Config, error) {
	cfg := dht.Config{Listen: cmd.String("listen"), Bootstrap: []string{}, StateDir: cmd.String("data-dir")}
	if _, _, err := peer.SplitListen(cfg.Listen); err != nil {
		return cfg, usageError{fmt.Errorf("--listen: %v", err)}
	}
	for _, s := range cmd.StringSlice("dht-bootstrap") {
		for _, b := range strings.Split(s, ",") {
			if b = strings.TrimSpace(b); b == "" {
				continue
			}
			if err := dht.CheckBootstrap(b); err != nil {
				return cfg, usageError{fmt.Errorf("--dht-bootstrap %v", err)}
			}
			cfg.Bootstrap = append(cfg.Bootstrap, b)
		}
	}
	if cfg.StateDir == "" {
		return cfg, usageError{errors.New("--data-dir is empty and no home folder is known")}
	}
	return cfg, nil
}

// runDHT serves the node until ctx ends.
func runDHT(ctx context.Context, cmd *cli.Command, cfg dht.Config) error {
	stderr := cmd.Root().ErrWriter
	log := newLogger(cmd, stderr)
	cfg.Logger = log
	n, err := dht.New(cfg)
	if err != nil {
		return listenError(err, "UDP", cfg.Listen)
	}
	enc := bareNodeStarted(cmd, "DHT node", "UDP", n.Addr().String(), cfg.Bootstrap)
	<-ctx.Done()
	nodes := n.NumNodes()
	st := n.Stats()
	if err := n.Close(); err != nil {
		log.Warn("DHT: saving the routing table", "err", err)
	}
	dropped := n.Dropped()
	if cmd.Bool("json") {
		_ = enc.Encode(struct {
			Event    string      `json:"event"`
			Nodes    int         `json:"nodes"`
			Sent     int64       `json:"sent"`
			Received int64       `json:"received"`
			Dropped  dht.Dropped `json:"dropped"`
		}{"stop", nodes, st.Sent, st.Received, dropped})
	} else {
		fmt.Fprintf(stderr, "DHT node stopped: %d nodes in its table; it sent %d queries and got %d replies; it dropped or refused %d datagrams\n",
			nodes, st.Sent, st.Received, dropped.Total())
	}
	return nil
}
