package bench

import (
	"testing"
	"time"
)

// BenchmarkClock times the two ways to read the clock for a transition's
// time. time.Now reads the wall clock and the monotonic clock. time.Since
// reads only the monotonic clock, which is enough to derive a time from
// one earlier time.Now. Where reading a clock costs several times a
// compare-and-swap, as under some hypervisors, no transition that records
// its time can come within a small factor of one.
func BenchmarkClock(b *testing.B) {
	b.Run("now", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			time.Now()
		}
	})

	b.Run("since", func(b *testing.B) {
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			time.Since(start)
		}
	})
}
