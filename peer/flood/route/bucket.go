package route

import (
	"math"
	"time"
)

// Bucket is a token bucket: it holds up to burst tokens, refilled at perSecond, and each
// allowed event takes one. The node keeps one per neighbour to rate-limit its queries.
//
// It counts in whole nanoseconds (the generic cell rate algorithm: the time at which the
// bucket would be full again), so its answers are exact, with no floating-point drift.
type Bucket struct {
	every time.Duration // one token's worth of time; 0: never refilled
	burst int
	full  time.Time // when the bucket is full again; zero: full now
	taken int       // events allowed so far, when never refilled
}

// NewBucket returns a full bucket. burst is at least 1; a perSecond of 0 or less (or too
// small to count in nanoseconds) never refills, so only burst events are ever allowed.
func NewBucket(perSecond float64, burst int) *Bucket {
	b := &Bucket{burst: max(burst, 1)}
	if perSecond > 0 {
		every := float64(time.Second) / perSecond
		if every < float64(math.MaxInt64)/float64(b.burst+1) {
			b.every = max(time.Duration(every), 1)
		}
	}
	return b
}

// Allow takes a token if there is one.
func (b *Bucket) Allow(now time.Time) bool {
	if b.every == 0 {
		if b.taken >= b.burst {
			return false
		}
		b.taken++
		return true
	}
	full := b.full
	if full.IsZero() || full.Before(now) {
		full = now
	}
	// Taking a token pushes full on by every; refuse if that would need more than burst.
	if full.Sub(now) > time.Duration(b.burst-1)*b.every {
		return false
	}
	b.full = full.Add(b.every)
	return true
}
