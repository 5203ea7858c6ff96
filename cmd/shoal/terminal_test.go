package main

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// TestInfoPrintsNoControlCharacters shows torrents and magnet links whose comment, creator,
// trackers or display name hold terminal escapes: shoal info prints none of them.
func TestInfoPrintsNoControlCharacters(t *testing.T) {
	for _, arg := range []string{
		filepath.Join(badinputFixtures, "escapes.torrent"),
		"magnet:?xt=urn:btih:" + strings.Repeat("ab", 20) + "&dn=%1b%5b2J%1b%5d0%3btitle%07%0d%0anext%c2%9b",
	} {
		for _, args := range [][]string{{"info", arg}, {"info", "--json", arg}} {
			code, stdout, stderr := badinputRun(t, args...)
			if code != 0 || stderr != "" {
				t.Fatalf("shoal %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
			}
			for _, r := range stdout {
				if unicode.IsControl(r) && r != '\n' {
					t.Errorf("shoal %s printed control character %U: %q", strings.Join(args, " "), r, stdout)
					break
				}
			}
		}
	}
}
