package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/shoalp2p/shoal/peer"
	"github.com/shoalp2p/shoal/peer/meta"
)

// errInterrupted: the user stopped a download before it completed.
var errInterrupted = errors.New("interrupted before the download completed; run the same command again to resume")

// defaultPort is the usual BitTorrent port.
const defaultPort = "6881"

// nodeFlags are the flags seed and get share.
func nodeFlags() []cli.Flag {
	flags := append(discoveryFlags(),
		&cli.StringFlag{Name: "listen", Value: ":" + defaultPort, Usage: "BitTorrent TCP address `HOST:PORT` (empty host: every interface; port 0: any free port; if the default port is busy, a free one)"},
		&cli.StringSliceFlag{Name: "peer", Usage: "connect to the peer at `HOST:PORT` directly (repeatable), whatever else is on"},
		&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "where shoal keeps its state (resume records)", Sources: cli.EnvVars("SHOAL_DATA_DIR")},
		&cli.BoolFlag{Name: "json", Usage: "print events as JSON lines on stdout instead of progress bars"},
		&cli.StringFlag{Name: "on-complete", Usage: "POST the complete event as JSON to `URL`"},
		&cli.StringFlag{Name: "download-rate", Usage: "cap downloads at `RATE` bytes per second (10MiB, 500KiB, 1000000)"},
		&cli.StringFlag{Name: "upload-rate", Usage: "cap uploads at `RATE` bytes per second"},
	)
	flags = append(flags, profileFlags()...)
	return append(flags, logFlags("log everything, the torrent library's messages included")...)
}

// logFlags are --quiet and --verbose; verbose says what --verbose shows.
func logFlags(verbose string) []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log only errors"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: verbose},
	}
}

// checkLogFlags refuses --quiet together with --verbose.
func checkLogFlags(cmd *cli.Command) error {
	if cmd.Bool("quiet") && cmd.Bool("verbose") {
		return usageError{errors.New("--quiet and --verbose cannot both be given")}
	}
	return nil
}

// checkServerArgs checks what the bare server commands (dht, flood, tracker) take: no
// arguments, and not both --quiet and --verbose.
func checkServerArgs(cmd *cli.Command) error {
	if cmd.NArg() > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q (see shoal %s --help)", cmd.Name, cmd.Args().First(), cmd.Name)}
	}
	return checkLogFlags(cmd)
}

// nodeConfig turns the shared flags into a node configuration.
func nodeConfig(cmd *cli.Command) (peer.Config, error) {
	var cfg peer.Config
	if err := checkLogFlags(cmd); err != nil {
		return cfg, err
	}
	var err error
	if cfg.DownloadRate, err = parseRate(cmd, "download-rate"); err != nil {
		return cfg, err
	}
	if cfg.UploadRate, err = parseRate(cmd, "upload-rate"); err != nil {
		return cfg, err
	}
	cfg.Listen = cmd.String("listen")
	if _, _, err := peer.SplitListen(cfg.Listen); err != nil {
		return cfg, usageError{fmt.Errorf("--listen: %v", err)}
	}
	cfg.DataDir = cmd.String("data-dir")
	if cfg.DataDir == "" {
		return cfg, usageError{errors.New("--data-dir is empty and no home folder is known")}
	}
	if _, err := parseDiscovery(cmd.String("discovery")); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// directPeers parses the --peer flags.
func directPeers(cmd *cli.Command) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range cmd.StringSlice("peer") {
		for _, p := range strings.Split(s, ",") {
			ap, err := meta.ParsePeerAddr(strings.TrimSpace(p))
			if err != nil {
				return nil, usageError{fmt.Errorf("--peer %q: %v", p, err)}
			}
			out = append(out, ap)
		}
	}
	return out, nil
}

func parseRate(cmd *cli.Command, name string) (int64, error) {
	s := cmd.String(name)
	if s == "" {
		return 0, nil
	}
	n, err := parseSize(s)
	if err != nil {
		return 0, usageError{fmt.Errorf("--%s: %v", name, err)}
	}
	return n, nil
}

// parseSize reads a byte count: a plain number, or one with a unit. KiB, MiB, GiB (and K, M, G)
// are powers of 1024; KB, MB, GB are powers of 1000.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult := map[string]float64{
		"": 1, "b": 1,
		"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
		"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
		"t": 1 << 40, "tib": 1 << 40, "tb": 1e12,
	}[unit]
	f, err := strconv.ParseFloat(num, 64)
	if mult == 0 || err != nil || num == "" {
		return 0, fmt.Errorf("%q is not a size (like 10MiB, 500KiB or 1048576)", s)
	}
	v := f * mult
	if v < 0 || v >= 1<<62 {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return int64(v), nil
}

// parseSeedTime reads --seed-time: empty means until interrupted (-1).
func parseSeedTime(s string) (time.Duration, error) {
	if s == "" {
		return -1, nil
	}
	if s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, usageError{fmt.Errorf("--seed-time %q: want a duration like 0, 30s, 10m or 2h", s)}
	}
	return d, nil
}

// defaultDataDir is $XDG_DATA_HOME/shoal, or ~/.local/share/shoal.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "shoal")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "shoal")
	}
	return ""
}

// oneArg returns the single positional argument or a usage error.
func oneArg(cmd *cli.Command, what string) (string, error) {
	switch cmd.NArg() {
	case 1:
		return cmd.Args().First(), nil
	case 0:
		return "", usageError{fmt.Errorf("%s: missing %s (see shoal %s --help)", cmd.Name, what, cmd.Name)}
	default:
		return "", usageError{fmt.Errorf("%s: one %s only, got %d arguments", cmd.Name, what, cmd.NArg())}
	}
}
