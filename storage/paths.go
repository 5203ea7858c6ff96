package storage

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/anacrolix/torrent/metainfo"
)

// Limits on what a torrent may ask to create on disk. CheckInfo refuses a torrent over any of
// them before a file or folder is made.
const (
	// MaxNameBytes is the longest file or folder name, in bytes: what ext4, NTFS and APFS allow.
	MaxNameBytes = 255
	// MaxPathBytes is the longest path of a file inside the torrent (its folders and name joined
	// by "/", the torrent's own name not counted): Linux's PATH_MAX.
	MaxPathBytes = 4096
	// MaxFiles is the most files a torrent may list (524,288). libtorrent's default limits
	// (10 MB and 3,000,000 bencode tokens per .torrent) stop at about 375,000; each file costs
	// the torrent library about 550 bytes for as long as the torrent runs.
	MaxFiles = 1 << 19
)

// ErrUnsafePath is wrapped by every error CheckInfo returns for a file name that could escape
// the download folder or cannot be created safely.
var ErrUnsafePath = errors.New("unsafe file name in torrent")

// CheckInfo refuses a torrent whose file names would escape the download folder or collide,
// and whose sizes do not add up, before any byte is written. It checks the info's own name
// and every path segment of every file.
func CheckInfo(info *metainfo.Info) error {
	if err := checkFileTree(info); err != nil {
		return err
	}
	if err := checkSegment(info.BestName()); err != nil {
		return fmt.Errorf("%w: torrent name %s: %v", ErrUnsafePath, quote(info.BestName()), err)
	}
	// Count before listing: UpvertedFiles copies the whole list.
	if n := len(info.Files); n > MaxFiles {
		return fmt.Errorf("torrent lists %d files, more than the %d allowed", n, MaxFiles)
	}
	files := info.UpvertedFiles()
	if len(files) > MaxFiles {
		return fmt.Errorf("torrent lists %d files, more than the %d allowed", len(files), MaxFiles)
	}
	seen := make(map[string]bool, len(files))
	dirs := make(map[string]bool)
	var total int64
	for i, f := range files {
		segs := f.BestPath()
		if info.IsDir() && len(segs) == 0 {
			return fmt.Errorf("%w: file %d has an empty path", ErrUnsafePath, i)
		}
		for _, s := range segs {
			if err := checkSegment(s); err != nil {
				return fmt.Errorf("%w: file %d path %s: %v", ErrUnsafePath, i, quote(strings.Join(segs, "/")), err)
			}
		}
		p := strings.Join(segs, "/")
		if len(p) > MaxPathBytes {
			return fmt.Errorf("%w: file %d path is %d bytes long, over %d", ErrUnsafePath, i, len(p), MaxPathBytes)
		}
		key := strings.ToLower(p) // collide as they would on a case-insensitive disk
		if seen[key] || dirs[key] {
			return fmt.Errorf("%w: file %d path %s is listed twice", ErrUnsafePath, i, quote(p))
		}
		seen[key] = true
		for d := path.Dir(key); d != "."; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("%w: %s is both a file and a folder", ErrUnsafePath, quote(d))
			}
			dirs[d] = true
		}
		if f.Length < 0 {
			return fmt.Errorf("file %d has negative length %d", i, f.Length)
		}
		total += f.Length
		if total < 0 {
			return errors.New("file sizes overflow")
		}
	}
	return nil
}

// checkFileTree refuses a v2 file tree the torrent library would panic on when listing its
// files: a piece length that is not positive, or a "pieces root" that is not 32 bytes.
func checkFileTree(info *metainfo.Info) error {
	if !info.HasV2() {
		return nil
	}
	if info.PieceLength <= 0 {
		return fmt.Errorf("piece length %d is not positive", info.PieceLength)
	}
	return checkTree(&info.FileTree, nil)
}

// checkTree checks a file tree's pieces roots in path order, so the error names the first bad file.
func checkTree(ft *metainfo.FileTree, p []string) error {
	if n := len(ft.File.PiecesRoot); n != 0 && n != 32 {
		return fmt.Errorf("v2 file %s has a %d-byte pieces root, not 32", quote(strings.Join(p, "/")), n)
	}
	for _, k := range slices.Sorted(maps.Keys(ft.Dir)) {
		if k == metainfo.FileTreePropertiesKey {
			continue
		}
		sub := ft.Dir[k]
		if err := checkTree(&sub, append(p, k)); err != nil {
			return err
		}
	}
	return nil
}

// checkSegment says why one name from a torrent cannot be used as a file or folder name.
func checkSegment(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case s == "." || s == "..":
		return fmt.Errorf("name %q refers to a folder itself", s)
	case strings.ContainsRune(s, 0):
		return errors.New("name contains a NUL byte")
	case strings.ContainsAny(s, `/\`):
		return errors.New("name contains a path separator")
	case len(s) >= 2 && s[1] == ':' && isASCIILetter(s[0]):
		return errors.New("name starts with a drive letter")
	case len(s) > MaxNameBytes:
		return fmt.Errorf("name is %d bytes long, over %d", len(s), MaxNameBytes)
	case !utf8.ValidString(s):
		return errors.New("name is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("name contains a control character")
		}
	}
	return nil
}

// quote quotes a name from a torrent for an error message, cut short after 64 bytes so that
// the message stays one readable line.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + fmt.Sprintf("... (%d bytes)", len(s))
}

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }
