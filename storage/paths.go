package storage

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/anacrolix/torrent/metainfo"
)

// Limits on what a torrent may ask to create on disk.
const (
	maxSegmentBytes = 255  // one file or folder name (ext4, NTFS, APFS)
	maxPathBytes    = 4096 // a whole relative path (Linux PATH_MAX)
	maxFiles        = 1 << 20
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
		return fmt.Errorf("%w: torrent name %q: %v", ErrUnsafePath, info.BestName(), err)
	}
	files := info.UpvertedFiles()
	if len(files) > maxFiles {
		return fmt.Errorf("torrent lists %d files, more than the %d allowed", len(files), maxFiles)
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
				return fmt.Errorf("%w: file %d path %q: %v", ErrUnsafePath, i, strings.Join(segs, "/"), err)
			}
		}
		p := strings.Join(segs, "/")
		if len(p) > maxPathBytes {
			return fmt.Errorf("%w: file %d path is %d bytes long, over %d", ErrUnsafePath, i, len(p), maxPathBytes)
		}
		key := strings.ToLower(p) // collide as they would on a case-insensitive disk
		if seen[key] || dirs[key] {
			return fmt.Errorf("%w: file %d path %q is listed twice", ErrUnsafePath, i, p)
		}
		seen[key] = true
		for d := path.Dir(key); d != "."; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("%w: %q is both a file and a folder", ErrUnsafePath, d)
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
		return fmt.Errorf("v2 file %q has a %d-byte pieces root, not 32", strings.Join(p, "/"), n)
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
	case len(s) > maxSegmentBytes:
		return fmt.Errorf("name is %d bytes long, over %d", len(s), maxSegmentBytes)
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

func isASCIILetter(b byte) bool { return (b|0x20) >= 'a' && (b|0x20) <= 'z' }
