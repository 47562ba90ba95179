package bench

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tasklife/task"
)

// parkedRuns is how many runs BenchmarkParked holds parked at once.
const parkedRuns = 100_000

// BenchmarkParked starts parkedRuns runs whose work blocks until its
// context ends, waits until every work has begun, then times cancelling
// them all and waiting for every outcome. Starting and parking are not
// timed. Beside the time for the whole batch it reports, per run:
//
//   - heap-B/run: live heap that parking adds, after a garbage collection,
//     from runtime.MemStats.HeapAlloc;
//   - stack-B/run: goroutine stack memory that parking adds, from
//     runtime.MemStats.StackInuse;
//   - cancel-ns/run: the timed part divided by the number of runs.
//
// Run it with a small fixed -benchtime such as 5x: each iteration is a
// batch of parkedRuns runs.
func BenchmarkParked(b *testing.B) {
	ctx := context.Background()

	b.Run("floor-status", func(b *testing.B) {
		var started sync.WaitGroup
		work := func(ctx context.Context) (int, error) {
			started.Done()
			<-ctx.Done()
			return 0, ctx.Err()
		}
		runs := make([]*statusRun, parkedRuns)
		park := func() {
			started.Add(parkedRuns)
			for i := range runs {
				runs[i] = startStatusRun(ctx, work, ignoreStatusChange)
			}
			started.Wait()
		}
		cancelAll := func() {
			for _, r := range runs {
				r.cancel()
			}
			for _, r := range runs {
				r.wait()
			}
			clear(runs)
		}
		measureParked(b, park, cancelAll)
	})

	parkTask := func(b *testing.B, timeout time.Duration) {
		var started sync.WaitGroup
		parked := task.Task[int]{
			Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
				started.Done()
				<-ctx.Done()
				return 0, context.Cause(ctx)
			},
			Timeout: timeout,
		}
		runs := make([]*task.Invocation[int], parkedRuns)
		park := func() {
			started.Add(parkedRuns)
			for i := range runs {
				runs[i] = parked.Start(ctx)
			}
			started.Wait()
		}
		cancelAll := func() {
			for _, inv := range runs {
				inv.Cancel(nil)
			}
			for _, inv := range runs {
				<-inv.Done()
			}
			clear(runs)
		}
		measureParked(b, park, cancelAll)
	}

	b.Run("task", func(b *testing.B) {
		parkTask(b, 0)
	})

	// Every run also holds an armed Timeout timer.
	b.Run("task-timeout", func(b *testing.B) {
		parkTask(b, unusedTimeout)
	})
}

// measureParked runs park untimed and cancelAll timed in every iteration,
// and reports the metrics described at BenchmarkParked. cancelAll must drop
// its references to the runs, or the next iteration's baseline would still
// count them.
func measureParked(b *testing.B, park, cancelAll func()) {
	b.ReportAllocs()

	// One untimed round first fills the runtime's free list of goroutine
	// descriptors, so that every measured round reuses descriptors instead
	// of allocating them. Descriptors never return to the heap, so without
	// this round only the first measured round would count them.
	park()
	cancelAll()

	var heapBytes, stackBytes int64
	for b.Loop() {
		b.StopTimer()
		before := collectMemStats()
		park()
		after := collectMemStats()
		heapBytes += int64(after.HeapAlloc) - int64(before.HeapAlloc)
		stackBytes += int64(after.StackInuse) - int64(before.StackInuse)
		b.StartTimer()

		cancelAll()
	}

	runs := float64(b.N) * parkedRuns
	b.ReportMetric(float64(heapBytes)/runs, "heap-B/run")
	b.ReportMetric(float64(stackBytes)/runs, "stack-B/run")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/runs, "cancel-ns/run")
}

// collectMemStats reads the memory statistics after a full garbage
// collection, so that HeapAlloc counts live objects only.
func collectMemStats() runtime.MemStats {
	runtime.GC()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	return stats
}
