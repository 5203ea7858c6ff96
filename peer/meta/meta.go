// Package meta reads and writes what names a torrent: .torrent files (BEP 3), magnet links
// (BEP 9) and bare info-hashes. It turns any of them into a Source, refusing malformed or
// unsafe metadata with a one-line error before anything touches the disk.
package meta

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/storage"
)

// Limits on the metadata shoal accepts, from a .torrent file or from peers after a magnet link.
// A torrent over any of them is refused with a one-line reason before anything is written.
// The limits on file names, paths and the number of files are storage.MaxNameBytes,
// storage.MaxPathBytes and storage.MaxFiles.
const (
	// MaxTorrentFileSize caps how much of a .torrent file is read (32 MiB). Real ones are
	// kilobytes to a few megabytes: a 1 TiB torrent with 16 MiB pieces lists 1.3 MB of hashes.
	// (libtorrent's default is 10 MB; metadata fetched from peers is capped at 16 MiB by the
	// torrent library.)
	MaxTorrentFileSize = 32 << 20

	// MinPieceLength and MaxPieceLength bound the piece length accepted in a torrent and
	// offered by Create: 16 KiB (the BitTorrent block, and BEP 52's minimum) to 64 MiB. A v1
	// piece length need not be a power of two (BEP 3 does not ask it, and libtorrent accepts
	// any); Create only makes powers of two.
	MinPieceLength = 16 << 10
	MaxPieceLength = 64 << 20

	// MaxPieces is the most pieces a torrent may have (1,048,576: 20 MiB of hashes, 64 TiB at
	// the largest piece length). The torrent library keeps about 100 bytes per piece;
	// libtorrent's default cap is twice this, but its 10 MB file limit stops at 500,000.
	MaxPieces = 1 << 20
)

// Source is a torrent named by a .torrent file, a magnet link or an info-hash. Info is nil
// until the metadata is known (magnets and info-hashes get it from peers).
type Source struct {
	InfoHash metainfo.Hash
	Name     string         // display name; may be empty for a bare info-hash
	Info     *metainfo.Info // nil for magnets and info-hashes
	MetaInfo *metainfo.MetaInfo
	Trackers [][]string       // announce tiers (BEP 12)
	Peers    []netip.AddrPort // x.pe peer addresses from a magnet
}

// Load reads SOURCE as a user gives it on the command line: a magnet URI, a 40-character hex
// (or 32-character base32) info-hash, or the path of a .torrent file.
func Load(source string) (*Source, error) {
	switch {
	case source == "":
		return nil, errors.New("no torrent given: pass a .torrent file, a magnet link or an info-hash")
	case strings.HasPrefix(strings.ToLower(source), "magnet:"):
		return ParseMagnet(source)
	case looksLikeInfoHash(source):
		if _, err := os.Stat(source); err != nil { // a file of that name wins
			ih, err := ParseInfoHash(source)
			if err != nil {
				return nil, err
			}
			return &Source{InfoHash: ih}, nil
		}
	}
	return LoadFile(source)
}

// LoadFile reads and checks a .torrent file.
func LoadFile(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file (want a .torrent file, a magnet link or an info-hash)", path)
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxTorrentFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > MaxTorrentFileSize {
		return nil, fmt.Errorf("%s: larger than %d MiB, not a .torrent file", path, MaxTorrentFileSize>>20)
	}
	s, err := ParseTorrent(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseTorrent decodes and checks the bytes of a .torrent file.
func ParseTorrent(b []byte) (*Source, error) {
	if len(b) == 0 {
		return nil, errors.New("empty file, not a .torrent")
	}
	if b[0] != 'd' {
		return nil, errors.New("not a .torrent file (it does not start with a bencoded dictionary)")
	}
	// Count the files first: decoding a million-entry list costs seconds and gigabytes.
	if n := countTorrentFiles(b, storage.MaxFiles); n > storage.MaxFiles {
		return nil, fmt.Errorf("torrent lists more than %d files, the most allowed", storage.MaxFiles)
	}
	var mi metainfo.MetaInfo
	d := bencode.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&mi); err != nil {
		return nil, fmt.Errorf("malformed .torrent: %v", firstLine(err))
	}
	if len(mi.InfoBytes) == 0 {
		return nil, errors.New("malformed .torrent: no info dictionary")
	}
	info, err := parseInfo(mi.InfoBytes, "malformed .torrent info")
	if err != nil {
		return nil, err
	}
	s := &Source{
		InfoHash: mi.HashInfoBytes(),
		Name:     info.BestName(),
		Info:     info,
		MetaInfo: &mi,
		Trackers: cleanTiers(mi.UpvertedAnnounceList()),
	}
	return s, nil
}

// ParseInfo decodes and checks an info dictionary as peers send it for a magnet link (BEP 9).
func ParseInfo(b []byte) (*metainfo.Info, error) {
	return parseInfo(b, "malformed info dictionary")
}

func parseInfo(b []byte, malformed string) (*metainfo.Info, error) {
	// Count the files before decoding them: a million-entry list costs gigabytes to decode.
	if n := countFiles(b, storage.MaxFiles); n > storage.MaxFiles {
		return nil, fmt.Errorf("torrent lists more than %d files, the most allowed", storage.MaxFiles)
	}
	var info metainfo.Info
	if err := bencode.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %v", malformed, firstLine(err))
	}
	if err := CheckInfo(&info); err != nil {
		return nil, err
	}
	return &info, nil
}

// CheckInfo refuses an info dictionary that shoal cannot download safely: a bad piece length,
// a pieces string that does not match the total size, or file names that would escape the
// download folder.
func CheckInfo(info *metainfo.Info) error {
	if info.HasV2() && !info.HasV1() {
		return errors.New("BitTorrent v2-only torrents are not supported; ask for a v1 or hybrid torrent")
	}
	pl := info.PieceLength
	if pl < MinPieceLength || pl > MaxPieceLength {
		return fmt.Errorf("piece length %d is outside %d KiB..%d MiB", pl, MinPieceLength>>10, MaxPieceLength>>20)
	}
	if len(info.Pieces)%20 != 0 {
		return fmt.Errorf("pieces string is %d bytes, not a multiple of 20", len(info.Pieces))
	}
	if err := storage.CheckInfo(info); err != nil {
		return err
	}
	if n := len(info.Pieces) / 20; n > MaxPieces {
		return fmt.Errorf("torrent lists %d piece hashes, more than the %d allowed", n, MaxPieces)
	}
	total := info.TotalLength()
	if total <= 0 {
		return errors.New("torrent holds no data (total size 0)")
	}
	want := (total + pl - 1) / pl
	if want > MaxPieces {
		return fmt.Errorf("torrent's %d bytes make %d pieces of %s, more than the %d allowed",
			total, want, SizeText(pl), MaxPieces)
	}
	if info.HasV2() {
		// Hybrid (BEP 52): the v1 pieces cover the v1 file list, padding files included,
		// while the torrent library counts pieces from the v2 file tree; they must agree.
		var v1 int64
		for f := range info.UpvertedV1Files() {
			if f.Length < 0 || v1+f.Length < v1 {
				return errors.New("hybrid torrent: bad v1 file length")
			}
			v1 += f.Length
		}
		want = (v1 + pl - 1) / pl
		var v2 int64
		for _, f := range info.UpvertedFiles() {
			v2 += (f.Length + pl - 1) / pl
		}
		if n := int64(info.NumPieces()); n != want || v2 != want {
			return fmt.Errorf("hybrid torrent: its v1 files need %d pieces but its v2 file tree %d", want, v2)
		}
	}
	if got := int64(len(info.Pieces) / 20); got != want {
		return fmt.Errorf("torrent lists %d piece hashes but its %d bytes need %d", got, total, want)
	}
	return nil
}

// cleanTiers drops empty tiers, and URLs that are empty or hold control characters (no
// tracker has one, and printed they would drive the terminal).
func cleanTiers(al metainfo.AnnounceList) [][]string {
	var out [][]string
	for _, tier := range al {
		var t []string
		for _, u := range tier {
			if u = strings.TrimSpace(u); u != "" && Printable(u) == u {
				t = append(t, u)
			}
		}
		if len(t) > 0 {
			out = append(out, t)
		}
	}
	return out
}

// Printable returns s safe to print on a terminal: control characters (which start escape
// sequences) and bytes that are not UTF-8 become U+FFFD. Names in a torrent are refused if they
// hold any; a magnet link's display name, a comment or a creator's name are only shown.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

func firstLine(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// SizeText is n bytes for a person, in binary units: 512 B, 1.5 KiB, 64.0 MiB.
func SizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
