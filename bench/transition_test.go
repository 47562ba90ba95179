package bench

import (
	"context"
	"testing"

	"github.com/looplab/fsm"
	"github.com/qmuntal/stateless"
	"github.com/tasklife/task"
)

// A transition cannot be repeated on one machine, because task's table has
// no cycle. The sequential benchmarks therefore prepare a batch of machines
// in the source status with the timer stopped, and time one transition on
// each. All of them time the same edge, abandon: FAILED -> ABANDONED.

// preparedBatch is how many machines a transition benchmark prepares each
// time it stops the timer.
const preparedBatch = 1024

// ignoreChange is the callback of the state-machine benchmarks that have
// one. It does nothing, so that they measure the cost of calling it.
var ignoreChange = func() {}

func BenchmarkTransition(b *testing.B) {
	ctx := context.Background()

	b.Run("cas", func(b *testing.B) {
		b.ReportAllocs()
		machines := make([]casMachine, preparedBatch)
		i := preparedBatch
		for b.Loop() {
			if i == preparedBatch {
				b.StopTimer()
				for j := range machines {
					machines[j].set(statusFailed, exitFailed)
				}
				i = 0
				b.StartTimer()
			}
			machines[i].fire(eventAbandon)
			i++
		}
	})

	b.Run("looplab", func(b *testing.B) {
		b.ReportAllocs()
		machines := make([]*fsm.FSM, preparedBatch)
		for j := range machines {
			machines[j] = newLooplab(statusFailed, nil)
		}
		i := preparedBatch
		for b.Loop() {
			if i == preparedBatch {
				b.StopTimer()
				for _, m := range machines {
					m.SetState(statusFailed.String())
				}
				i = 0
				b.StartTimer()
			}
			machines[i].Event(ctx, "abandon")
			i++
		}
	})

	b.Run("stateless", func(b *testing.B) {
		b.ReportAllocs()
		states := make([]status, preparedBatch)
		machines := make([]*stateless.StateMachine, preparedBatch)
		for j := range machines {
			machines[j] = newStateless(&states[j], nil)
		}
		i := preparedBatch
		for b.Loop() {
			if i == preparedBatch {
				b.StopTimer()
				for j := range states {
					states[j] = statusFailed
				}
				i = 0
				b.StartTimer()
			}
			machines[i].Fire(eventAbandon)
			i++
		}
	})

	// task has no public call that only makes a transition. Abandon of a
	// FAILED run is the closest: one transition, no goroutine, no timer and
	// no context, and Done is closed already. It also builds the run's new
	// error, which wraps the reason and the earlier failure.
	b.Run("task-abandon", func(b *testing.B) {
		b.ReportAllocs()
		runs := make([]*task.Invocation[int], preparedBatch)
		i := preparedBatch
		for b.Loop() {
			if i == preparedBatch {
				b.StopTimer()
				for j := range runs {
					runs[j] = invalidTask.Start(ctx)
				}
				i = 0
				b.StartTimer()
			}
			runs[i].Abandon(errAbandonReason)
			i++
		}
	})

	// Start of an invalid task allocates the invocation and its validation
	// error, then makes one transition, to FAILED, and closes Done.
	b.Run("task-invalid-start", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			invalidTask.Start(ctx)
		}
	})
}

// BenchmarkTransitionParallel times one transition on one machine per
// goroutine. RunParallel cannot stop the timer, so each iteration also
// resets the machine to FAILED: an atomic store for cas, SetState for
// looplab and a plain store for stateless.
func BenchmarkTransitionParallel(b *testing.B) {
	ctx := context.Background()

	b.Run("cas", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var m casMachine
			for pb.Next() {
				m.set(statusFailed, exitFailed)
				m.fire(eventAbandon)
			}
		})
	})

	b.Run("looplab", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			m := newLooplab(statusFailed, nil)
			for pb.Next() {
				m.SetState(statusFailed.String())
				m.Event(ctx, "abandon")
			}
		})
	})

	b.Run("stateless", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var state status
			m := newStateless(&state, nil)
			for pb.Next() {
				state = statusFailed
				m.Fire(eventAbandon)
			}
		})
	})

	// An invalid Start, as in BenchmarkTransition: it needs no reset.
	b.Run("task-invalid-start", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				invalidTask.Start(ctx)
			}
		})
	})
}

// BenchmarkLifecycle times the three transitions of a successful run,
// start, begin and return, on a new machine, with one callback after each.
// It times the state machine alone: no goroutine, no context, no work.
func BenchmarkLifecycle(b *testing.B) {
	ctx := context.Background()

	b.Run("cas", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := new(casMachine)
			for _, e := range [...]event{eventStart, eventBegin, eventReturn} {
				m.fire(e)
				ignoreChange()
			}
		}
	})

	b.Run("looplab", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := newLooplab(statusNone, ignoreChange)
			for _, e := range [...]event{eventStart, eventBegin, eventReturn} {
				m.Event(ctx, e.String())
			}
		}
	})

	b.Run("stateless", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			state := new(status)
			m := newStateless(state, ignoreChange)
			for _, e := range [...]event{eventStart, eventBegin, eventReturn} {
				m.Fire(e)
			}
		}
	})

	b.Run("stateless-shared", func(b *testing.B) {
		b.ReportAllocs()
		m := newSharedStateless(ignoreChange)
		for b.Loop() {
			state := new(status)
			runCtx := context.WithValue(ctx, statelessRunKey{}, state)
			for _, e := range [...]event{eventStart, eventBegin, eventReturn} {
				m.FireCtx(runCtx, e)
			}
		}
	})
}
