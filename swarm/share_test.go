package swarm_test

import (
	"os"
	"testing"
	"time"

	"github.com/shoalp2p/shoal/swarm"
)

// TestLeechersServeEachOther: one seeder and 8 leechers, each on its own loopback address,
// found through a tracker. Every copy's sha256 matches, and the leechers serve each other:
// the seeder sends less than 3 times the content (1.5 to 2.7 times under -race with another
// run beside it). SHOAL_SHARE_INORDER=1 runs it without the swarm policy of peer/share.go,
// in the library's own order, to watch it fail: the seeder then sent 3.9 to 4.1 times.
func TestLeechersServeEachOther(t *testing.T) {
	if testing.Short() {
		t.Skip("9 full nodes")
	}
	const size = 16 << 20
	src, err := swarm.WriteContent(t.TempDir(), size, 1)
	if err != nil {
		t.Fatal(err)
	}
	opts := []swarm.Option{swarm.WithMode("tracker")}
	if os.Getenv("SHOAL_SHARE_INORDER") != "" {
		opts = append(opts, func(_ testing.TB, c *swarm.Config) { c.InOrder = true })
	}
	s := swarm.New(t, 9, opts...)
	tor, err := s.Seed(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Fetch(t.Context(), tor, swarm.FetchOptions{Timeout: 2 * time.Minute}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.Verified != 8 {
		t.Fatalf("%d of 8 copies verified: %s", rep.Verified, rep.Reason)
	}
	t.Logf("the seeder sent %.2fx the content, the leechers %.2fx, in %.2f s",
		rep.SeederUpload, float64(rep.UploadedByLeechers)/size, rep.Seconds)
	if rep.SeederUpload >= 3 {
		t.Errorf("the seeder sent %.2fx the content (%d bytes of %d), want less than 3x: the leechers fetch from it what they could get from each other",
			rep.SeederUpload, rep.UploadedBySeeders, int64(size))
	}
}
