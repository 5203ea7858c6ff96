package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/peer/meta"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"10MiB", 10 << 20},
		{"500KiB", 500 << 10},
		{"1.5MB", 1500000},
		{"1000000", 1000000},
		{"0", 0},
		{"7b", 7},
		{"7B", 7},
		{"1k", 1 << 10},
		{"1K", 1 << 10},
		{"2m", 2 << 20},
		{"3G", 3 << 30},
		{"1GiB", 1 << 30},
		{"1gb", 1e9},
		{"2TiB", 2 << 40},
		{"1tb", 1e12},
		{"0.5KiB", 512},
		{"1 MiB", 1 << 20},
		{"  64KiB  ", 64 << 10},
		{"1e3", 1000},
		{"10.", 10},
		{".5k", 512},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "not a size"},
		{"   ", "not a size"},
		{"abc", "not a size"},
		{"MiB", "not a size"},
		{"10XB", "not a size"},
		{"10 M B", "not a size"},
		{"1..5MB", "not a size"},
		{"1,5MB", "not a size"},
		{"0x10", "not a size"},
		{"NaN", "not a size"},
		{"Inf", "not a size"},
		{"1e400", "not a size"},
		{"-1", "out of range"},
		{"-1KiB", "out of range"},
		{"-0.5", "out of range"},
		{"5000000TiB", "out of range"},
		{"4611686018427387904", "out of range"},
		{"99999999999999999999", "out of range"},
	} {
		got, err := parseSize(tc.in)
		if err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", tc.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), strconv.Quote(tc.in)) {
			t.Errorf("parseSize(%q): error %q should quote the input and say %q", tc.in, err, tc.want)
		}
	}
}

func TestParseSeedTime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":      -1,
		"0":     0,
		"0s":    0,
		"30s":   30 * time.Second,
		"10m":   10 * time.Minute,
		"2h":    2 * time.Hour,
		"1h30m": 90 * time.Minute,
		"1.5h":  90 * time.Minute,
	} {
		got, err := parseSeedTime(in)
		if err != nil || got != want {
			t.Errorf("parseSeedTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"-5s", "-1", "5", "abc", "1d", "10 m", "1h-", " 30s"} {
		_, err := parseSeedTime(in)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("parseSeedTime(%q) = %v, want a usage error", in, err)
			continue
		}
		if !strings.Contains(err.Error(), "--seed-time") {
			t.Errorf("parseSeedTime(%q): %q does not name the flag", in, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"10MiB", "500KiB", "1.5MB", "1000000", "", "abc", "-1", "10XB", "1e400", "0x1p4", "1_000", ".", "9.2e18", "4611686018427387904"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error is not one line: %q", msg)
			}
			if n != 0 {
				t.Fatalf("parseSize(%q) = %d beside an error", s, n)
			}
			return
		}
		if n < 0 || n >= 1<<62 {
			t.Fatalf("parseSize(%q) = %d, out of range", s, n)
		}
		// A plain integer that a float64 holds exactly means itself.
		if i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && i >= 0 && i <= 1<<53 && i != n {
			t.Fatalf("parseSize(%q) = %d, want %d", s, n, i)
		}
	})
}

// flagsTorrent makes a small .torrent in a temporary folder and returns its path.
func flagsTorrent(t *testing.T) (string, *meta.Source) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(data, []byte(strings.Repeat("shoal ", 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := meta.Create(data, meta.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tf := filepath.Join(dir, "data.torrent")
	if err := meta.WriteTorrent(src, tf); err != nil {
		t.Fatal(err)
	}
	return tf, src
}

// Flags may come after the positional argument.
func TestFlagsAfterArgument(t *testing.T) {
	tf, src := flagsTorrent(t)
	for _, args := range [][]string{
		{"info", tf, "--json"},
		{"info", "--json", tf},
	} {
		code, stdout, stderr := badinputRun(t, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("shoal %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
		var got struct {
			InfoHash string `json:"infohash"`
			Name     string `json:"name"`
		}
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("shoal %s printed no JSON: %v\n%s", strings.Join(args, " "), err, stdout)
		}
		if got.InfoHash != src.InfoHash.HexString() || got.Name != "data.bin" {
			t.Errorf("shoal %s: %+v", strings.Join(args, " "), got)
		}
	}

	// create, with its flags after PATH.
	dir := t.TempDir()
	data := filepath.Join(dir, "f")
	if err := os.WriteFile(data, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "f.torrent")
	code, stdout, stderr := badinputRun(t, "create", data, "-o", out, "--piece-length", "16KiB", "--private", "--comment", "after")
	if code != 0 {
		t.Fatalf("create with flags after PATH: exit %d, %s", code, stderr)
	}
	if !strings.HasPrefix(stdout, "magnet:?xt=urn:btih:") {
		t.Errorf("create printed %q", stdout)
	}
	src2, err := meta.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if src2.Info.PieceLength != 16<<10 || src2.Info.Private == nil || !*src2.Info.Private || src2.MetaInfo.Comment != "after" {
		t.Errorf("flags after PATH were not applied: piece length %d, private %v, comment %q",
			src2.Info.PieceLength, src2.Info.Private, src2.MetaInfo.Comment)
	}
}

func TestUsageErrors(t *testing.T) {
	tf, _ := flagsTorrent(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "f")
	if err := os.WriteFile(data, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frob"}, `unknown command "frob"`},
		{"info without argument", []string{"info"}, "missing torrent"},
		{"info with two arguments", []string{"info", tf, tf}, "one torrent only"},
		{"unknown flag", []string{"info", "--bogus", tf}, "bogus"},
		{"unknown flag after the argument", []string{"info", tf, "--bogus"}, "bogus"},
		{"get without argument", []string{"get"}, "missing torrent"},
		{"discovery", []string{"get", tf, "--discovery", "gossip"}, `--discovery "gossip"`},
		{"discovery list", []string{"get", tf, "--discovery", "none,mdns"}, "--discovery"},
		{"quiet and verbose", []string{"get", tf, "--quiet", "--verbose"}, "--quiet and --verbose"},
		{"-q and -v", []string{"get", "-q", "-v", tf}, "--quiet and --verbose"},
		{"peer host name", []string{"get", tf, "--peer", "localhost:6881"}, `--peer "localhost:6881"`},
		{"peer without port", []string{"get", tf, "--peer", "127.0.0.1"}, "--peer"},
		{"peer port 0", []string{"get", tf, "--peer", "127.0.0.1:0"}, "port 0"},
		{"peer list", []string{"get", tf, "--peer", "127.0.0.1:1,nope"}, `--peer "nope"`},
		{"download rate", []string{"get", tf, "--download-rate", "10XB"}, "--download-rate"},
		{"upload rate", []string{"get", tf, "--upload-rate", "-1"}, "--upload-rate"},
		{"seed time", []string{"get", tf, "--seed-time", "-5s"}, "--seed-time"},
		{"seed ratio", []string{"get", tf, "--seed-ratio", "-1"}, "--seed-ratio"},
		{"seed ratio not a number", []string{"get", tf, "--seed-ratio", "lots"}, "seed-ratio"},
		{"seed discovery", []string{"seed", data, "--discovery", "pigeon"}, "--discovery"},
		{"discovery none and more", []string{"get", tf, "--discovery", "none,tracker"}, "--discovery none"},
		{"tracker without mode", []string{"get", tf, "--discovery", "none", "--tracker", "http://127.0.0.1:1/announce"}, "--tracker"},
		{"tracker bad url", []string{"get", tf, "--discovery", "tracker", "--tracker", "nope"}, "--tracker"},
		{"seed quiet and verbose", []string{"seed", "--torrent", tf, data, "-q", "-v"}, "--quiet and --verbose"},
		{"create piece length", []string{"create", data, "--piece-length", "3000"}, "power of two"},
		{"create piece length unit", []string{"create", data, "--piece-length", "16XB"}, "--piece-length"},
		{"create two paths", []string{"create", data, data}, "one PATH only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string(nil), tc.args...)
			switch tc.args[0] {
			case "get":
				args = append(args, "-o", out, "--data-dir", out+".state", "--listen", "127.0.0.1:0")
			case "seed":
				args = append(args, "--data-dir", out+".state", "--listen", "127.0.0.1:0")
			case "create":
				args = append(args, "-o", filepath.Join(out, "x.torrent"))
			}
			code, stdout, stderr := badinputRun(t, args...)
			if code != 2 {
				t.Errorf("shoal %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), code, stderr)
			}
			if strings.Contains(stdout, "magnet:") {
				t.Errorf("stdout: %q", stdout)
			}
			badinputOneLine(t, stderr, tc.want)
			badinputAbsentOrEmpty(t, out)
			badinputAbsentOrEmpty(t, out+".state")
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "f.torrent")); err == nil {
		t.Error("a refused create wrote f.torrent")
	}
}

// A bad --listen is a usage error: exit 2 with one line, before anything is created.
func TestBadListen(t *testing.T) {
	tf, _ := flagsTorrent(t)
	for _, l := range []string{"nonsense", "127.0.0.1:99999", "localhost:0", "127.0.0.1:-1", "1.2.3:4"} {
		t.Run(l, func(t *testing.T) {
			tmp := t.TempDir()
			out, state := filepath.Join(tmp, "out"), filepath.Join(tmp, "state")
			code, _, stderr := badinputRun(t, "get", tf, "--listen", l, "-o", out, "--data-dir", state)
			if code != 2 {
				t.Fatalf("--listen %q: exit %d, want 2", l, code)
			}
			badinputOneLine(t, stderr, "listen address", strconv.Quote(l))
			badinputAbsentOrEmpty(t, tmp)
		})
	}
}
