package task

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkTransition measures one transition, STARTING to STARTED, beside
// a hand-written machine that looks up the same table and commits with one
// compare-and-swap. The bench module cannot reach an unexported
// transition, so this benchmark lives in the package. Each iteration also
// resets the status, in both.
func BenchmarkTransition(b *testing.B) {
	b.Run("cas", func(b *testing.B) {
		b.ReportAllocs()
		var word atomic.Uint32 // status in the low byte, exit code above it
		for b.Loop() {
			word.Store(uint32(StatusStarting))
			old := word.Load()
			r, ok := next(Status(old), EventBegin)
			if !ok || !word.CompareAndSwap(old, uint32(r.to)|uint32(r.code)<<8) {
				b.Fatal("transition rejected")
			}
		}
	})
	b.Run("clock", func(b *testing.B) {
		// The clock read that every transition makes for its history
		// entry: the floor of any transition that records its time.
		b.ReportAllocs()
		start := time.Now()
		var sum time.Duration
		for b.Loop() {
			sum += time.Since(start)
		}
		if sum < 0 {
			b.Fatal("clock went back")
		}
	})
	b.Run("task", func(b *testing.B) {
		b.ReportAllocs()
		inv := &Invocation[int]{parent: context.Background()}
		inv.ctx, inv.cancelWork = context.WithCancelCause(context.Background())
		defer inv.cancelWork(nil)
		for b.Loop() {
			inv.mu.Lock()
			inv.status, inv.historyLen = StatusStarting, 1
			if !inv.fireLocked(EventBegin, 0, nil) {
				b.Fatal("transition rejected")
			}
			inv.mu.Unlock()
		}
	})
}
