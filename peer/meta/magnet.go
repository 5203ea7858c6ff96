package meta

import (
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

// MaxMagnetLength bounds a magnet link (64 KiB); real ones with a dozen trackers are a few KiB.
const MaxMagnetLength = 64 << 10

// ParseMagnet parses a magnet URI (BEP 9): the v1 info-hash (xt=urn:btih:, hex or base32),
// the display name (dn), trackers (tr, each its own tier) and peer addresses (x.pe).
func ParseMagnet(uri string) (*Source, error) {
	if len(uri) > MaxMagnetLength {
		return nil, fmt.Errorf("bad magnet link: %d bytes long, over %d KiB", len(uri), MaxMagnetLength>>10)
	}
	u, err := url.Parse(uri)
	if err != nil || !strings.EqualFold(u.Scheme, "magnet") {
		return nil, errors.New("bad magnet link: want magnet:?xt=urn:btih:<info-hash>")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("bad magnet link: %v", err)
	}
	s := &Source{}
	found := false
	for _, xt := range q["xt"] {
		rest, ok := cutPrefixFold(xt, "urn:btih:")
		if !ok {
			continue
		}
		if found {
			return nil, errors.New("bad magnet link: more than one btih info-hash")
		}
		if s.InfoHash, err = ParseInfoHash(rest); err != nil {
			return nil, fmt.Errorf("bad magnet link: %w", err)
		}
		found = true
	}
	if !found {
		if len(q["xt"]) > 0 {
			return nil, errors.New("bad magnet link: only v1 (urn:btih:) info-hashes are supported")
		}
		return nil, errors.New("bad magnet link: no xt=urn:btih: info-hash")
	}
	s.Name = Printable(q.Get("dn"))
	for _, tr := range q["tr"] {
		tu, err := url.Parse(tr)
		if err != nil || tu.Host == "" {
			return nil, fmt.Errorf("bad magnet link: tracker %q is not a URL", tr)
		}
		s.Trackers = append(s.Trackers, []string{tr})
	}
	for _, pe := range q["x.pe"] {
		ap, err := ParsePeerAddr(pe)
		if err != nil {
			return nil, fmt.Errorf("bad magnet link: x.pe %q: %v", pe, err)
		}
		s.Peers = append(s.Peers, ap)
	}
	return s, nil
}

// ParseInfoHash reads a v1 info-hash: 40 hex digits or 32 base32 characters.
func ParseInfoHash(s string) (metainfo.Hash, error) {
	var h metainfo.Hash
	switch len(s) {
	case 40:
		if _, err := hex.Decode(h[:], []byte(s)); err != nil {
			return h, fmt.Errorf("info-hash %q is not hexadecimal", s)
		}
	case 32:
		n, err := base32.StdEncoding.Decode(h[:], []byte(strings.ToUpper(s)))
		if err != nil || n != 20 {
			return h, fmt.Errorf("info-hash %q is not base32", s)
		}
	default:
		return h, fmt.Errorf("info-hash %q is %d characters; want 40 hex or 32 base32", truncate(s, 60), len(s))
	}
	return h, nil
}

// ParsePeerAddr reads HOST:PORT where HOST is an IP address (IPv6 in brackets).
func ParsePeerAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("want IP:PORT, like 127.0.0.1:6881 or [::1]:6881")
	}
	if ap.Port() == 0 {
		return ap, errors.New("port 0 cannot be dialled")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// Magnet returns the magnet link for a torrent: info-hash, name and trackers.
func Magnet(s *Source) string {
	m := metainfo.MagnetV2{DisplayName: s.Name}
	m.InfoHash.Value, m.InfoHash.Ok = s.InfoHash, true
	for _, tier := range s.Trackers {
		m.Trackers = append(m.Trackers, tier...)
	}
	return m.String()
}

func looksLikeInfoHash(s string) bool {
	if len(s) == 40 {
		_, err := hex.DecodeString(s)
		return err == nil
	}
	if len(s) == 32 {
		_, err := base32.StdEncoding.DecodeString(strings.ToUpper(s))
		return err == nil
	}
	return false
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
