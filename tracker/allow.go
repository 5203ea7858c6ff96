package tracker

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/anacrolix/torrent/metainfo"
)

// ParseAllowList reads an allow list: one info-hash a line, as 40 hexadecimal digits.
// Blank lines and everything after a # are ignored.
func ParseAllowList(r io.Reader) ([]metainfo.Hash, error) {
	var out []metainfo.Hash
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var ih metainfo.Hash
		if len(line) != 40 {
			return nil, fmt.Errorf("line %d: %q is not an info-hash (40 hexadecimal digits)", n, line)
		}
		if _, err := hex.Decode(ih[:], []byte(line)); err != nil {
			return nil, fmt.Errorf("line %d: %q is not an info-hash (40 hexadecimal digits)", n, line)
		}
		out = append(out, ih)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadAllowFile reads the allow list in the file at path (see ParseAllowList).
func ReadAllowFile(path string) ([]metainfo.Hash, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hs, err := ParseAllowList(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return hs, nil
}
