package meta

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// CreateOptions are the choices a torrent's creator makes.
type CreateOptions struct {
	Announce    []string // tracker URLs, each its own tier (BEP 12)
	PieceLength int64    // 0: chosen from the size, see PieceLengthFor
	Private     bool     // BEP 27: only the torrent's trackers may be used
	Comment     string
	CreatedBy   string
	// Progress, if set, is called with the bytes hashed so far.
	Progress func(hashed, total int64)
}

// PieceLengthFor chooses a piece length as mktorrent and Transmission do: a power of two, at
// least 256 KiB, doubled until the torrent has at most about 2,000 pieces, at most 16 MiB.
func PieceLengthFor(total int64) int64 {
	pl := int64(256 << 10)
	for pl < 16<<20 && total/pl > 2000 {
		pl *= 2
	}
	return pl
}

// CheckPieceLength refuses a piece length other clients would choke on.
func CheckPieceLength(pl int64) error {
	if pl < MinPieceLength || pl > MaxPieceLength || bits.OnesCount64(uint64(pl)) != 1 {
		return fmt.Errorf("piece length %d must be a power of two from 16KiB to 64MiB", pl)
	}
	return nil
}

// Create builds a v1 torrent of the file or folder at path and returns it as a Source whose
// MetaInfo can be written out with WriteTorrent.
func Create(path string, opts CreateOptions) (*Source, error) {
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file or folder", path)
		}
		return nil, err
	}
	for _, a := range opts.Announce {
		if u, err := url.Parse(a); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "udp") {
			return nil, fmt.Errorf("announce URL %q: want an http, https or udp URL with a host", a)
		}
	}
	info := metainfo.Info{Name: filepath.Base(root)}
	if st.IsDir() {
		if info.Files, err = listFiles(root); err != nil {
			return nil, err
		}
		if len(info.Files) == 0 {
			return nil, fmt.Errorf("%s: folder holds no files", path)
		}
	} else if st.Mode().IsRegular() {
		info.Length = st.Size()
	} else {
		return nil, fmt.Errorf("%s: not a regular file or folder", path)
	}
	total := info.TotalLength()
	if total == 0 {
		return nil, fmt.Errorf("%s: holds no data (0 bytes)", path)
	}
	info.PieceLength = opts.PieceLength
	if info.PieceLength == 0 {
		info.PieceLength = PieceLengthFor(total)
	}
	if err := CheckPieceLength(info.PieceLength); err != nil {
		return nil, err
	}
	if opts.Private {
		t := true
		info.Private = &t
	}
	var hashed int64
	err = info.GeneratePieces(func(fi metainfo.FileInfo) (io.ReadCloser, error) {
		p := root
		if st.IsDir() {
			p = filepath.Join(append([]string{root}, fi.BestPath()...)...)
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		return &countingFile{File: f, n: &hashed, total: total, progress: opts.Progress}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("hashing %s: %w", path, err)
	}
	if hashed != total {
		return nil, fmt.Errorf("%s changed while it was hashed", path)
	}
	mi := &metainfo.MetaInfo{Comment: opts.Comment, CreatedBy: opts.CreatedBy, CreationDate: time.Now().Unix()}
	if len(opts.Announce) > 0 {
		mi.Announce = opts.Announce[0]
		if len(opts.Announce) > 1 {
			for _, a := range opts.Announce {
				mi.AnnounceList = append(mi.AnnounceList, []string{a})
			}
		}
	}
	if mi.InfoBytes, err = bencode.Marshal(info); err != nil {
		return nil, err
	}
	if err := CheckInfo(&info); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Source{
		InfoHash: mi.HashInfoBytes(),
		Name:     info.Name,
		Info:     &info,
		MetaInfo: mi,
		Trackers: cleanTiers(mi.UpvertedAnnounceList()),
	}, nil
}

// WriteTorrent writes the source's .torrent file to path, refusing to overwrite one.
func WriteTorrent(s *Source, path string) error {
	if s.MetaInfo == nil {
		return errors.New("no metadata to write")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; remove it or choose another -o", path)
		}
		return err
	}
	if err := s.MetaInfo.Write(f); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// listFiles walks a folder in path order, following links to regular files.
func listFiles(root string) ([]metainfo.FileInfo, error) {
	var files []metainfo.FileInfo
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, metainfo.FileInfo{Path: strings.Split(rel, string(filepath.Separator)), Length: fi.Size()})
		return nil
	})
	sort.Slice(files, func(i, j int) bool {
		return strings.Join(files[i].Path, "/") < strings.Join(files[j].Path, "/")
	})
	return files, err
}

type countingFile struct {
	*os.File
	n        *int64
	total    int64
	progress func(int64, int64)
}

func (c *countingFile) Read(p []byte) (int, error) {
	n, err := c.File.Read(p)
	*c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(*c.n, c.total)
	}
	return n, err
}
