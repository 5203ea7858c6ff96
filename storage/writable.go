package storage

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/anacrolix/torrent/metainfo"
)

// CheckWritable tells early whether the torrent's data can be written: each part file left
// by an earlier run is opened for writing, and each folder a file goes in is tried with a
// file created and removed at once. It returns the first error, such as a read-only file
// system or a permission denied.
func (s *Store) CheckWritable(info *metainfo.Info) error {
	root := s.Root(info)
	dirs := map[string]bool{}
	for _, f := range info.UpvertedFiles() {
		final := filepath.Join(append([]string{root}, f.BestPath()...)...)
		if fh, err := os.OpenFile(final+".part", os.O_WRONLY, 0); err == nil {
			fh.Close()
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// The nearest folder on the way that exists is where the file (or its folders) will
		// be made.
		dir := filepath.Dir(final)
		for {
			if _, err := os.Stat(dir); err == nil || dir == s.opts.Dir || dir == filepath.Dir(dir) {
				break
			}
			dir = filepath.Dir(dir)
		}
		if dirs[dir] {
			continue
		}
		dirs[dir] = true
		probe, err := os.CreateTemp(dir, ".shoal-write-test-*")
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				pe.Path = dir // not the random name
			}
			return err
		}
		probe.Close()
		if err := os.Remove(probe.Name()); err != nil {
			return err
		}
	}
	return nil
}
