package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/announce"
	"github.com/shoalp2p/shoal/peer/dht"
	"github.com/shoalp2p/shoal/peer/flood"
	"github.com/shoalp2p/shoal/peer/flood/transport"
)

// discoveryModes are the values --discovery takes.
var discoveryModes = []string{"none", "dht", "tracker", "flood"}

// discoveryFlags choose how seed and get find peers.
func discoveryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "discovery", Value: "dht,tracker", Sources: cli.EnvVars("SHOAL_DISCOVERY"),
			Usage: "how to find peers, a comma `LIST` of " + strings.Join(discoveryModes, ", ") +
				" (none: only --peer and the torrent's own trackers)"},
		&cli.StringSliceFlag{Name: "tracker", Usage: "also announce to the tracker at `URL` (repeatable; with --discovery tracker)"},
		&cli.StringSliceFlag{Name: "dht-bootstrap", Usage: "join the DHT through the node at `HOST:PORT` (repeatable, or a comma list; default: the public routers)"},
		&cli.StringFlag{Name: "dht-listen", Usage: "DHT UDP address `HOST:PORT` (default: the --listen address; a free port if that one is busy)"},
		&cli.StringFlag{Name: "flood-listen", Usage: "flood overlay TCP address `HOST:PORT` (default: the --listen host, any free port)"},
		&cli.StringSliceFlag{Name: "flood-peers", Usage: "join the flood overlay through the node at `IP:PORT` (repeatable, or a comma list)"},
		&cli.IntFlag{Name: "flood-degree", Value: flood.DefaultDegree, Usage: "keep between `D` and 2D overlay neighbours"},
		&cli.IntFlag{Name: "flood-ttl", Value: flood.DefaultTTL, Usage: "hops a flood query travels (a walker's steps), `N` <= 7"},
		&cli.IntFlag{Name: "flood-walkers", Usage: "search with `K` random walkers instead of flooding (0: flood)"},
	}
}

// parseDiscovery reads --discovery into a set of modes.
func parseDiscovery(s string) (map[string]bool, error) {
	modes := make(map[string]bool)
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		ok := false
		for _, m := range discoveryModes {
			ok = ok || d == m
		}
		if !ok {
			return nil, usageError{fmt.Errorf("--discovery %q: want a comma list of %s", d, strings.Join(discoveryModes, ", "))}
		}
		modes[d] = true
	}
	if modes["none"] && len(modes) > 1 {
		return nil, usageError{errors.New("--discovery none cannot be combined with other modes")}
	}
	return modes, nil
}

// discoveryAdapters builds the adapters the flags ask for. The torrent's own trackers are
// always used, so a tracker adapter is there even with --discovery none.
func discoveryAdapters(cmd *cli.Command, cfg peer.Config) ([]peer.Discovery, error) {
	modes, err := parseDiscovery(cmd.String("discovery"))
	if err != nil {
		return nil, err
	}
	var urls []string
	for _, u := range cmd.StringSlice("tracker") {
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https" && pu.Scheme != "udp") {
			return nil, usageError{fmt.Errorf("--tracker %q: want an http, https or udp URL", u)}
		}
		urls = append(urls, u)
	}
	if len(urls) > 0 && !modes["tracker"] {
		return nil, usageError{errors.New("--tracker needs --discovery to include tracker")}
	}
	// Usage errors before any adapter starts (a DHT node would start joining, and log).
	if !modes["flood"] {
		for _, name := range []string{"flood-listen", "flood-peers", "flood-degree", "flood-ttl", "flood-walkers"} {
			if cmd.IsSet(name) {
				return nil, usageError{fmt.Errorf("--%s needs --discovery to include flood", name)}
			}
		}
	}
	var local netip.Addr
	if host, _, err := peer.SplitListen(cfg.Listen); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && !a.IsUnspecified() {
			local = a
		}
	}
	out := []peer.Discovery{announce.New(announce.Config{URLs: urls, LocalIP: local, Logger: cfg.Logger})}
	if modes["dht"] {
		d, err := dhtAdapter(cmd, cfg)
		if err != nil {
			out[0].Close()
			return nil, err
		}
		out = append(out, d)
	}
	if modes["flood"] {
		f, err := floodAdapter(cmd, cfg)
		if err != nil {
			for _, d := range out {
				d.Close()
			}
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// floodAdapter starts the node's flood overlay node: on the --listen host (any free port)
// unless --flood-listen says otherwise, joining through --flood-peers.
func floodAdapter(cmd *cli.Command, cfg peer.Config) (*flood.Node, error) {
	host, _, _ := peer.SplitListen(cfg.Listen)
	listen := net.JoinHostPort(host, "0")
	if cmd.IsSet("flood-listen") {
		listen = cmd.String("flood-listen")
		if _, _, err := peer.SplitListen(listen); err != nil {
			return nil, usageError{fmt.Errorf("--flood-listen: %v", err)}
		}
	}
	fc, err := floodConfig(cmd)
	if err != nil {
		return nil, err
	}
	fc.TTL, fc.Walkers = int(cmd.Int("flood-ttl")), int(cmd.Int("flood-walkers"))
	if fc.TTL < 1 || fc.TTL > 7 {
		return nil, usageError{fmt.Errorf("--flood-ttl %d: want 1..7", fc.TTL)}
	}
	if fc.Walkers < 0 || fc.Walkers > 256 {
		return nil, usageError{fmt.Errorf("--flood-walkers %d: want 0..256", fc.Walkers)}
	}
	fc.Logger = cfg.Logger
	tr, err := transport.ListenTCP(listen)
	if err != nil {
		return nil, err
	}
	fc.Transport = tr
	n, err := flood.New(fc)
	if err != nil {
		tr.Close()
	}
	return n, err
}

// floodConfig reads the --flood-* flags that shoal flood shares with seed and get:
// --flood-degree and --flood-peers.
func floodConfig(cmd *cli.Command) (flood.Config, error) {
	fc := flood.Config{Degree: int(cmd.Int("flood-degree"))}
	if fc.Degree < 1 || fc.Degree > 64 {
		return fc, usageError{fmt.Errorf("--flood-degree %d: want 1..64", fc.Degree)}
	}
	for _, s := range cmd.StringSlice("flood-peers") {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			ap, err := netip.ParseAddrPort(p)
			if err != nil || ap.Port() == 0 {
				return fc, usageError{fmt.Errorf("--flood-peers %q: want IP:PORT, like 127.0.0.1:7000", p)}
			}
			fc.Bootstrap = append(fc.Bootstrap, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return fc, nil
}

// dhtAdapter starts the node's DHT server: on the --listen address unless --dht-listen says
// otherwise, joining through --dht-bootstrap (the public routers when not given), with its
// routing table kept in DATA_DIR/dht.
func dhtAdapter(cmd *cli.Command, cfg peer.Config) (*dht.Node, error) {
	dc := dht.Config{Listen: cfg.Listen, StateDir: filepath.Join(cfg.DataDir, "dht"), Logger: cfg.Logger}
	if cmd.IsSet("dht-listen") {
		dc.Listen = cmd.String("dht-listen")
		if _, _, err := peer.SplitListen(dc.Listen); err != nil {
			return nil, usageError{fmt.Errorf("--dht-listen: %v", err)}
		}
	}
	if cmd.IsSet("dht-bootstrap") {
		dc.Bootstrap = []string{}
		for _, s := range cmd.StringSlice("dht-bootstrap") {
			for _, b := range strings.Split(s, ",") {
				if b = strings.TrimSpace(b); b == "" {
					continue
				}
				if err := dht.CheckBootstrap(b); err != nil {
					return nil, usageError{fmt.Errorf("--dht-bootstrap %v", err)}
				}
				dc.Bootstrap = append(dc.Bootstrap, b)
			}
		}
	}
	d, err := dht.New(dc)
	if errors.Is(err, syscall.EADDRINUSE) && !cmd.IsSet("dht-listen") {
		host, _, _ := peer.SplitListen(dc.Listen)
		dc.Listen = net.JoinHostPort(host, "0")
		d, err = dht.New(dc)
	}
	return d, err
}
