package main

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	tstorage "github.com/anacrolix/torrent/storage"

	"github.com/anacrolix/torrent/metainfo"
)

// crashPiece is the piece length of the crash tests' torrents.
const crashPiece = 256 << 10

// crashTorrent writes a random payload of size bytes in a new folder and makes a torrent of
// it; it returns the payload's path, the torrent's path and its info.
func crashTorrent(t *testing.T, size int64) (data, tf string, info *metainfo.Info) {
	t.Helper()
	dir := t.TempDir()
	data = filepath.Join(dir, "payload.bin")
	randomFile(t, data, size)
	tf = filepath.Join(dir, "payload.torrent")
	if out, err := exec.Command(shoalBin(t), "create", data, "-o", tf, "--piece-length", "256KiB", "-q").CombinedOutput(); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	mi, err := metainfo.LoadFromFile(tf)
	if err != nil {
		t.Fatal(err)
	}
	i, err := mi.UnmarshalInfo()
	if err != nil {
		t.Fatal(err)
	}
	return data, tf, &i
}

// validPieces hashes the file at path against the torrent: the pieces on disk and whole.
func validPieces(t *testing.T, path string, info *metainfo.Info) map[int]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := map[int]bool{}
	for i := range info.NumPieces() {
		p := info.Piece(i)
		b := make([]byte, p.Length())
		if _, err := f.ReadAt(b, p.Offset()); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		if sha1.Sum(b) == [20]byte(p.V1Hash().Unwrap()) {
			v[i] = true
		}
	}
	return v
}

// recordedPieces lists the pieces the resume record in dir holds as complete (none when
// there is no record yet). The shoal that wrote it must be gone.
func recordedPieces(t *testing.T, dir string, ih metainfo.Hash, n int) []int {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, ".torrent.bolt.db")); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	pc, err := tstorage.NewBoltPieceCompletion(dir)
	if err != nil {
		t.Fatalf("opening the resume record: %v", err)
	}
	defer pc.Close()
	var out []int
	for i := range n {
		c, err := pc.Get(metainfo.PieceKey{InfoHash: ih, Index: i})
		if err != nil {
			t.Fatal(err)
		}
		if c.Ok && c.Complete {
			out = append(out, i)
		}
	}
	return out
}

// pieceBytes is how many bytes the pieces in set hold.
func pieceBytes(info *metainfo.Info, set map[int]bool) int64 {
	var n int64
	for i := range set {
		n += info.Piece(i).Length()
	}
	return n
}

func num(e map[string]any, k string) int64 { f, _ := e[k].(float64); return int64(f) }

// A download killed with SIGKILL at random points, again and again (2 rounds; 10 with
// SHOAL_SOAK), and started again each time, ends with the exact file. Between rounds the test
// hashes the part file itself: the pieces found whole there are never fetched again, and
// every piece the resume record holds as complete is among them. Once, a piece the record
// holds as complete is corrupted on disk between two runs: it is fetched again, not trusted.
func TestSoakKillRestart(t *testing.T) {
	// The seeder sends rate bytes a second; each kill lands within share of what is left.
	rounds, size, rate, share := 2, int64(16<<20), int64(4<<20), 0.5
	if os.Getenv("SHOAL_SOAK") != "" {
		rounds, size, rate, share = 10, 48<<20, 2<<20, 0.25
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const slack = 4 * crashPiece // pieces being fetched when progress was reported

	data, tf, info := crashTorrent(t, size)
	seeder := startShoal(t, "seed", tf, "-d", filepath.Dir(data), "--listen", "127.0.0.2:0",
		"--data-dir", t.TempDir(), "--json", "--upload-rate", strconv.FormatInt(rate, 10))
	start := seeder.next(t, 60*time.Second, isEvent("start"))
	ih := metainfo.NewHashFromHex(start["infohash"].(string))

	out, state := t.TempDir(), t.TempDir()
	part := filepath.Join(out, "payload.bin.part")
	record := filepath.Join(state, "resume", ih.HexString())
	getArgs := []string{"get", tf, "-o", out, "--listen", "127.0.0.3:0", "--peer", start["listen"].(string),
		"--data-dir", state, "--seed-time", "0", "--json"}

	kills := 0
	valid := map[int]bool{} // pieces whole on disk after the last kill
	corrupted := -1
	var right int64          // bytes in right blocks of the pieces not whole on disk (rightBlocks)
	var final map[string]any // the complete event
	for round := range rounds {
		have := pieceBytes(info, valid)
		if size-have < 4*crashPiece {
			break // too little left to cut short
		}
		// Where to kill: at a random share of what is left, or a random delay after the first
		// piece arrived. The first round goes far enough for the record to hold pieces.
		threshold, delay := int64(-1), time.Duration(-1)
		switch {
		case round == 0:
			threshold = have + int64((0.4+0.2*rng.Float64())*float64(size-have))
		case rng.IntN(2) == 0:
			threshold = have + int64((0.05+share*rng.Float64())*float64(size-have))
		default:
			left := time.Duration(float64(size-have) / float64(rate) * float64(time.Second))
			delay = time.Duration(rng.Int64N(int64(share*float64(left)) + 1))
		}
		p := startShoal(t, getArgs...)
		var first, last map[string]any
		var killAt <-chan time.Time
		deadline := time.After(120 * time.Second)
	run:
		for {
			select {
			case e, ok := <-p.events:
				if !ok {
					t.Fatalf("round %d: shoal exited before it was killed: %v", round, <-p.exited)
				}
				switch e["event"] {
				case "complete":
					final = e
					break run
				case "progress":
					if first == nil {
						first = e
					}
					last = e
					if threshold >= 0 && num(e, "completed") >= threshold {
						break run
					}
					if delay >= 0 && killAt == nil && num(e, "downloaded") > 0 {
						killAt = time.After(delay)
					}
				}
			case <-killAt:
				break run
			case <-deadline:
				t.Fatalf("round %d: no kill point after 120 s (last progress %v)", round, last)
			}
		}
		if final != nil {
			t.Logf("round %d: the download completed before its kill point", round)
			if err := p.wait(t, 30*time.Second); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			break
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.wait(t, 30*time.Second)
		kills++

		if first != nil && num(first, "completed") < have {
			t.Errorf("round %d: started with %d bytes complete, but %d bytes were whole on disk", round, num(first, "completed"), have)
		}
		if last != nil {
			gained := num(last, "completed") - have
			if got := num(last, "downloaded"); got > gained+slack {
				t.Errorf("round %d: read %d bytes from peers but completed only %d more: pieces already on disk were fetched again", round, got, gained)
			}
		}
		now := validPieces(t, part, info)
		for i := range valid {
			if !now[i] {
				t.Errorf("round %d: piece %d was whole on disk before the run and is not after it", round, i)
			}
		}
		valid = now
		rec := recordedPieces(t, record, ih, info.NumPieces())
		for _, i := range rec {
			if !valid[i] {
				t.Errorf("round %d: the resume record holds piece %d as complete, but its bytes on disk do not match", round, i)
			}
		}
		t.Logf("round %d: killed at %v: %d of %d pieces whole on disk, %d in the resume record",
			round, map[bool]string{true: "a share of the progress", false: "a delay after the first piece"}[threshold >= 0],
			len(valid), info.NumPieces(), len(rec))
		if corrupted < 0 && len(rec) > 0 {
			corrupted = rec[rng.IntN(len(rec))]
			corruptPiece(t, part, info, corrupted)
			delete(valid, corrupted)
			t.Logf("round %d: corrupted piece %d, which the resume record holds as complete", round, corrupted)
		}
		// A piece not whole on disk may still hold some right blocks (written before the
		// kill), and the library may check it, with those blocks, once the rest has come:
		// they are not fetched again, and the piece passes its hash.
		right = rightBlocks(t, part, data, info, valid)
	}
	t.Logf("%d kills in %d rounds", kills, rounds)
	if corrupted < 0 {
		t.Error("no run left a resume record with a complete piece, so none was corrupted")
	}

	if final == nil {
		last := startShoal(t, getArgs...)
		final = last.next(t, 120*time.Second, isEvent("complete"))
		if err := last.wait(t, 30*time.Second); err != nil {
			t.Fatalf("last get: %v", err)
		}
	}
	if sha(t, filepath.Join(out, "payload.bin")) != sha(t, data) {
		t.Fatal("downloaded file differs from the original")
	}
	missing := size - pieceBytes(info, valid)
	got := num(final, "downloaded")
	t.Logf("last run read %d bytes, %d were missing (%d of them in right blocks of pieces not whole)", got, missing, right)
	if got > missing+slack {
		t.Errorf("last run read %d bytes from peers, but only %d were missing: pieces on disk were fetched again", got, missing)
	}
	if got < missing-right {
		t.Errorf("last run read %d bytes from peers, but %d were missing or corrupt", got, missing-right)
	}
}

// rightBlocks is how many bytes of the pieces not in whole the file at path already holds
// right, in 16 KiB blocks (the library's requests).
func rightBlocks(t *testing.T, path, original string, info *metainfo.Info, whole map[int]bool) int64 {
	t.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(original)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for i := range info.NumPieces() {
		if whole[i] {
			continue
		}
		p := info.Piece(i)
		for off := p.Offset(); off < p.Offset()+p.Length(); off += 16 << 10 {
			end := min(off+16<<10, p.Offset()+p.Length())
			if end <= int64(len(f)) && bytes.Equal(f[off:end], data[off:end]) {
				n += end - off
			}
		}
	}
	return n
}

// corruptPiece flips the first KiB of piece i in the file at path.
func corruptPiece(t *testing.T, path string, info *metainfo.Info, i int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1024)
	off := info.Piece(i).Offset()
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	orig := bytes.Clone(b)
	for j := range b {
		b[j] ^= 0xa5
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(orig, b) {
		t.Fatal("corruption changed nothing")
	}
}

// A resume record damaged (as a power cut while it was written may leave it) does not stop
// shoal: it is set aside, the file on disk is hashed rather than trusted, and a piece found
// corrupt is fetched again.
func TestDamagedRecord(t *testing.T) {
	const size = 4 << 20
	data, tf, info := crashTorrent(t, size)
	seeder := startShoal(t, "seed", tf, "-d", filepath.Dir(data), "--listen", "127.0.0.2:0",
		"--data-dir", t.TempDir(), "--json")
	start := seeder.next(t, 60*time.Second, isEvent("start"))
	out, state := t.TempDir(), t.TempDir()
	args := []string{"get", tf, "-o", out, "--listen", "127.0.0.3:0", "--peer", start["listen"].(string),
		"--data-dir", state, "--seed-time", "0", "--json"}
	if r := runShoal(t, args...); r.code != 0 || r.event("complete") == nil {
		t.Fatalf("first get: exit %d, stderr %s", r.code, r.stderr)
	}
	final := filepath.Join(out, "payload.bin")
	corruptPiece(t, final, info, 3)
	db := filepath.Join(state, "resume", start["infohash"].(string), ".torrent.bolt.db")
	garbage := bytes.Repeat([]byte("not a bolt database "), 1000)
	if err := os.WriteFile(db, garbage, 0o600); err != nil {
		t.Fatal(err)
	}

	r := runShoal(t, args...)
	done := r.event("complete")
	if r.code != 0 || done == nil {
		t.Fatalf("get with a damaged record: exit %d, stderr %s", r.code, r.stderr)
	}
	if sha(t, final) != sha(t, data) {
		t.Fatal("the file on disk was trusted: it still differs from the original")
	}
	if got := num(done, "downloaded"); got < info.Piece(3).Length() || got > 4*crashPiece {
		t.Errorf("read %d bytes from peers, want the corrupt piece (%d bytes) and little more", got, info.Piece(3).Length())
	}
	if b, err := os.ReadFile(db + ".damaged"); err != nil || !bytes.Equal(b, garbage) {
		t.Errorf("the damaged record was not kept aside as %s.damaged: %v", db, err)
	}
}
