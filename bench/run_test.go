package bench

import (
	"context"
	"testing"
	"time"

	"github.com/sourcegraph/conc"
	"golang.org/x/sync/errgroup"
)

// firingTimeout is the timeout of the benchmarks in which it fires. It is
// short so that the run measures how fast the timer's end stops the work,
// not how long the work waited.
const firingTimeout = time.Microsecond

// unusedTimeout is the timeout of the benchmarks that arm a timer which
// never fires.
const unusedTimeout = time.Hour

// BenchmarkRun times one whole run of a trivial work: start it in its own
// goroutine and wait for its result.
func BenchmarkRun(b *testing.B) {
	ctx := context.Background()

	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			floorRun(ctx, trivialWork)
		}
	})

	b.Run("floor-status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			startStatusRun(ctx, trivialWork, ignoreStatusChange).wait()
		}
	})

	b.Run("floor-timeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			timeoutCtx, cancel := context.WithTimeout(ctx, unusedTimeout)
			startStatusRun(timeoutCtx, trivialWork, ignoreStatusChange).wait()
			cancel()
		}
	})

	b.Run("errgroup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			runErrgroup(ctx, trivialWork)
		}
	})

	b.Run("errgroup-ctx", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			runErrgroupContext(ctx, trivialWork)
		}
	})

	b.Run("conc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			runConc(ctx, trivialWork)
		}
	})

	b.Run("looplab", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			runLooplab(ctx, trivialWork)
		}
	})

	b.Run("stateless", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			runStateless(ctx, trivialWork)
		}
	})

	b.Run("task", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			trivialTask.Start(ctx).Wait(ctx)
		}
	})

	b.Run("task-callback", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			trivialTask.Start(ctx, changedCallback).Wait(ctx)
		}
	})

	b.Run("task-timeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			timeoutTask.Start(ctx).Wait(ctx)
		}
	})
}

// runErrgroup runs work in an errgroup.Group, which has no context of its
// own to cancel.
func runErrgroup(ctx context.Context, work func(context.Context) (int, error)) (int, error) {
	var (
		g     errgroup.Group
		value int
	)
	g.Go(func() (err error) {
		value, err = work(ctx)
		return err
	})
	err := g.Wait()
	return value, err
}

// runErrgroupContext runs work in a group from errgroup.WithContext, whose
// context the group cancels when the work fails or Wait returns.
func runErrgroupContext(ctx context.Context, work func(context.Context) (int, error)) (int, error) {
	g, groupCtx := errgroup.WithContext(ctx)
	var value int
	g.Go(func() (err error) {
		value, err = work(groupCtx)
		return err
	})
	err := g.Wait()
	return value, err
}

// runConc runs work in a conc.WaitGroup, which has no context and no error
// of its own, so the error travels beside the value.
func runConc(ctx context.Context, work func(context.Context) (int, error)) (int, error) {
	var (
		wg    conc.WaitGroup
		value int
		err   error
	)
	wg.Go(func() {
		value, err = work(ctx)
	})
	wg.Wait()
	return value, err
}

// runLooplab is the floor with its status kept by looplab/fsm: a new
// machine per run, three transitions, one callback after each.
func runLooplab(ctx context.Context, work func(context.Context) (int, error)) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	m := newLooplab(statusNone, ignoreChange)
	m.Event(ctx, eventStart.String())

	var (
		value int
		err   error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Event(ctx, eventBegin.String())
		value, err = work(ctx)
		if err != nil {
			m.Event(ctx, eventFail.String())
		} else {
			m.Event(ctx, eventReturn.String())
		}
	}()
	<-done
	return value, err
}

// runStateless is the floor with its status kept by qmuntal/stateless: a
// new machine per run, three transitions, one callback after each.
func runStateless(ctx context.Context, work func(context.Context) (int, error)) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	state := new(status)
	m := newStateless(state, ignoreChange)
	m.Fire(eventStart)

	var (
		value int
		err   error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Fire(eventBegin)
		value, err = work(ctx)
		if err != nil {
			m.Fire(eventFail)
		} else {
			m.Fire(eventReturn)
		}
	}()
	<-done
	return value, err
}

// BenchmarkRunParallel is BenchmarkRun with runs started from every
// processor at once. Run it with -cpu 1,2 to see how start and wait scale.
func BenchmarkRunParallel(b *testing.B) {
	ctx := context.Background()

	b.Run("floor-status", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				startStatusRun(ctx, trivialWork, ignoreStatusChange).wait()
			}
		})
	})

	b.Run("errgroup-ctx", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				runErrgroupContext(ctx, trivialWork)
			}
		})
	})

	b.Run("task", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				trivialTask.Start(ctx).Wait(ctx)
			}
		})
	})

	b.Run("task-callback", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				trivialTask.Start(ctx, changedCallback).Wait(ctx)
			}
		})
	})
}

// BenchmarkCancel times cancelling a run whose work has begun and blocks
// until its context ends, up to the moment its caller has the outcome.
func BenchmarkCancel(b *testing.B) {
	ctx := context.Background()

	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		started := make(chan struct{}, 1)
		for b.Loop() {
			workCtx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				blockedWork(workCtx, started)
			}()
			<-started
			cancel()
			<-done
		}
	})

	b.Run("task", func(b *testing.B) {
		b.ReportAllocs()
		started := make(chan struct{}, 1)
		blocked := blockedTask(started)
		for b.Loop() {
			inv := blocked.Start(ctx)
			<-started
			inv.Cancel(nil)
			inv.Wait(ctx)
		}
	})

	// The cancel function confirms the stop at once, so the run is STOPPED
	// as soon as it returns, and the work's return is ignored.
	b.Run("task-cancelfunc", func(b *testing.B) {
		b.ReportAllocs()
		started := make(chan struct{}, 1)
		blocked := blockedTask(started)
		blocked.Cancel = confirmStop
		for b.Loop() {
			inv := blocked.Start(ctx)
			<-started
			inv.Cancel(nil)
			inv.Wait(ctx)
		}
	})
}

// BenchmarkTimeout times a run whose timeout fires while its work blocks
// until its context ends, from start to the moment its caller has the
// outcome. It includes the wait for firingTimeout.
func BenchmarkTimeout(b *testing.B) {
	ctx := context.Background()

	b.Run("floor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			workCtx, cancel := context.WithTimeout(ctx, firingTimeout)
			done := make(chan struct{})
			go func() {
				defer close(done)
				blockedWork(workCtx, nil)
			}()
			<-done
			cancel()
		}
	})

	b.Run("task", func(b *testing.B) {
		b.ReportAllocs()
		blocked := blockedTask(nil)
		blocked.Timeout = firingTimeout
		for b.Loop() {
			blocked.Start(ctx).Wait(ctx)
		}
	})
}
