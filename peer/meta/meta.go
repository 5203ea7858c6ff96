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

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/shoalp2p/shoal/storage"
)

// MaxTorrentFileSize caps how much of a .torrent file is read. Real ones are kilobytes to a
// few megabytes (a 1 TiB torrent with 16 MiB pieces lists 1.3 MB of hashes).
const MaxTorrentFileSize = 32 << 20

// Piece length bounds accepted in a torrent and offered by Create.
const (
	MinPieceLength = 16 << 10
	MaxPieceLength = 64 << 20
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
	var mi metainfo.MetaInfo
	d := bencode.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&mi); err != nil {
		return nil, fmt.Errorf("malformed .torrent: %v", firstLine(err))
	}
	if len(mi.InfoBytes) == 0 {
		return nil, errors.New("malformed .torrent: no info dictionary")
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return nil, fmt.Errorf("malformed .torrent info: %v", firstLine(err))
	}
	if err := CheckInfo(&info); err != nil {
		return nil, err
	}
	s := &Source{
		InfoHash: mi.HashInfoBytes(),
		Name:     info.BestName(),
		Info:     &info,
		MetaInfo: &mi,
		Trackers: cleanTiers(mi.UpvertedAnnounceList()),
	}
	return s, nil
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
	total := info.TotalLength()
	if total <= 0 {
		return errors.New("torrent holds no data (total size 0)")
	}
	want := (total + pl - 1) / pl
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

// cleanTiers drops empty tiers and URLs.
func cleanTiers(al metainfo.AnnounceList) [][]string {
	var out [][]string
	for _, tier := range al {
		var t []string
		for _, u := range tier {
			if u = strings.TrimSpace(u); u != "" {
				t = append(t, u)
			}
		}
		if len(t) > 0 {
			out = append(out, t)
		}
	}
	return out
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
