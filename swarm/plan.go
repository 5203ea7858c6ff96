package swarm

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// MaxFiles bounds Plan.Files.
const MaxFiles = 10000

// Plan is one run of `shoal swarm`: a swarm of Nodes in Mode shares Size bytes of random
// content, seeded by the first Seeders nodes and fetched by all the others at once, through
// the mode alone, while a Churn share of them is killed midway.
type Plan struct {
	Config
	// Seeders is how many nodes seed (nodes 0..Seeders-1): at least 1, fewer than Nodes.
	Seeders int
	// Size is the content's size in bytes; Files > 1 makes it a folder of that many files
	// (of Size/Files bytes each, give or take one), 1 a single file.
	Size  int64
	Files int
	// Churn and Timeout are as in FetchOptions.
	Churn   float64
	Timeout time.Duration
}

// Check says what is wrong with p, in one line, or nil.
func (p Plan) Check() error {
	if err := p.Config.Check(); err != nil {
		return err
	}
	switch {
	case p.Nodes < 2:
		return fmt.Errorf("%d nodes: want at least 2, a seeder and a leecher", p.Nodes)
	case p.Seeders < 1 || p.Seeders >= p.Nodes:
		return fmt.Errorf("%d seeders: want 1..%d, fewer than the %d nodes", p.Seeders, p.Nodes-1, p.Nodes)
	case p.Size < 1:
		return fmt.Errorf("size %d: want at least 1 byte", p.Size)
	case p.Files < 1 || p.Files > MaxFiles:
		return fmt.Errorf("%d files: want 1..%d", p.Files, MaxFiles)
	case int64(p.Files) > p.Size:
		return fmt.Errorf("%d files in %d bytes: want at least a byte a file", p.Files, p.Size)
	case p.Churn < 0 || p.Churn >= 1:
		return fmt.Errorf("churn %v: want a share of the leechers, 0 <= churn < 1", p.Churn)
	case p.Timeout < 0:
		return fmt.Errorf("timeout %v: must not be negative", p.Timeout)
	}
	return nil
}

// Run starts the swarm, writes the content into its folder, seeds it, fetches it as Fetch does
// (reporting through emit), closes the swarm and returns the report. The error is for a run
// that could not start or finish, or ctx's when it ended early (the report, if any, says how
// far it got).
func (p Plan) Run(ctx context.Context, emit func(Event)) (rep *Report, err error) {
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	s, err := Start(ctx, p.Config)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	path, err := WriteContent(filepath.Join(s.Dir(), "content"), p.Size, p.Files)
	if err != nil {
		return nil, err
	}
	seeders := make([]int, p.Seeders)
	for i := range seeders {
		seeders[i] = i
	}
	src, err := s.Seed(ctx, path, seeders...)
	if err != nil {
		return nil, err
	}
	// Half the leechers start from the magnet link: their mode must find peers with no
	// more than the info-hash (and the magnet's trackers).
	return s.Fetch(ctx, src, FetchOptions{Churn: p.Churn, Timeout: p.Timeout, Magnet: true}, emit)
}

// WriteContent writes size random bytes into dir: one file, payload.bin, or with files > 1 a
// folder, payload, of that many files (part-0001.bin, ...) of size/files bytes each, the
// first few a byte more. It returns the path of the file or folder.
func WriteContent(dir string, size int64, files int) (string, error) {
	if size < 1 || files < 1 || int64(files) > size {
		return "", fmt.Errorf("swarm: %d files in %d bytes: want at least a byte a file", files, size)
	}
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return "", err
	}
	r := rand.NewChaCha8(seed)
	if files == 1 {
		path := filepath.Join(dir, "payload.bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		return path, writeRandom(path, size, r)
	}
	root := filepath.Join(dir, "payload")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	each, extra := size/int64(files), size%int64(files)
	for k := range int64(files) {
		n := each
		if k < extra {
			n++
		}
		if err := writeRandom(filepath.Join(root, fmt.Sprintf("part-%04d.bin", k+1)), n, r); err != nil {
			return "", err
		}
	}
	return root, nil
}

func writeRandom(path string, n int64, r io.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.CopyN(w, r, n); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
