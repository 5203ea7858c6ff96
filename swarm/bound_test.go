package swarm

import (
	"testing"
	"time"
)

// The seeders' upload bound: from the cap every node has, or from each seeder's highest rate
// over a second of its progress, added up.
func TestBound(t *testing.T) {
	r := &Report{Size: 64 << 20, Seconds: 8, Seeders: 2, UploadedBySeeders: 96 << 20}
	r.bound(4<<20, nil)
	if r.BoundFrom != "upload-rate" || r.BoundRate != 8<<20 || r.Bound != 8 || r.BoundRatio != 1 || r.SeederUpload != 1.5 {
		t.Fatalf("capped: %+v", r)
	}

	// Four samples a second: 1 MiB a quarter, then 3 MiB a quarter for a second, then
	// nothing; the peak over a second is 12 MiB/s.
	at := time.Unix(1000, 0)
	var ss []sample
	up := int64(0)
	for k := range 16 {
		switch {
		case k >= 4 && k < 8:
			up += 3 << 20
		case k < 4:
			up += 1 << 20
		}
		ss = append(ss, sample{at.Add(time.Duration(k) * 250 * time.Millisecond), up})
	}
	if got := peakRate(ss); got != 12<<20 {
		t.Fatalf("peak %d, want %d", got, 12<<20)
	}
	r = &Report{Size: 24 << 20, Seconds: 4, Seeders: 2}
	r.bound(0, map[*job][]sample{{}: ss, {node: 1}: ss[:3]}) // under a second: no rate
	if r.BoundFrom != "measured" || r.BoundRate != 12<<20 || r.Bound != 2 || r.BoundRatio != 2 {
		t.Fatalf("measured: %+v", r)
	}
	r = &Report{Size: 24 << 20, Seconds: 4, Seeders: 1}
	r.bound(0, nil)
	if r.Bound != 0 || r.BoundRatio != 0 {
		t.Fatalf("no progress: %+v", r)
	}
}
