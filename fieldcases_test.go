package task_test

// Faults that went wrong in well-known systems, one test each, named for
// what it checks. Each covers the whole kind of fault, not only the input
// that was first reported.

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasklife/task"
)

// ignoredLog records the events a run's Ignored callback receives.
type ignoredLog struct {
	mu     sync.Mutex
	events []task.Ignored[int]
}

func (l *ignoredLog) callbacks() task.Callbacks[int] {
	return task.Callbacks[int]{Ignored: func(_ *task.Invocation[int], e task.Ignored[int]) {
		l.mu.Lock()
		l.events = append(l.events, e)
		l.mu.Unlock()
	}}
}

// count returns how many ignored events were e in status s.
func (l *ignoredLog) count(e task.Event, s task.Status) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ig := range l.events {
		if ig.Event == e && ig.Status == s {
			n++
		}
	}
	return n
}

func (l *ignoredLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// waitDone waits for inv to finish, with a deadline that only a hung run
// reaches, and returns its outcome.
func waitDone(t *testing.T, inv *task.Invocation[int]) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := inv.Wait(ctx)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the run did not finish: deadlock or lost event")
	return v, err
}

// cancelAtOnce calls inv.Cancel from n goroutines released together and
// returns how many calls returned true.
func cancelAtOnce(inv *task.Invocation[int], n int, cause error) int {
	release := make(chan struct{})
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-release
			if inv.Cancel(cause) {
				wins.Add(1)
			}
		})
	}
	close(release)
	wg.Wait()
	return int(wins.Load())
}

func TestInvocation_ConcurrentCancelsBeforeTimeout(t *testing.T) {
	t.Run("one cancel wins over timer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var cancelCalls atomic.Int32
			cause := errors.New("operator stop")
			tk := task.Task[int]{
				Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
					time.Sleep(30 * time.Millisecond) // ignores its context
					return 7, nil
				},
				Cancel: func(ctx context.Context, _ *task.Invocation[int]) error {
					cancelCalls.Add(1)
					time.Sleep(20 * time.Millisecond)
					return nil
				},
				Timeout: 10 * time.Millisecond,
			}
			var ignored ignoredLog
			inv := tk.Start(context.Background(), task.WithCallbacks(ignored.callbacks()))

			time.Sleep(9 * time.Millisecond) // the timeout is due a moment later
			wins := cancelAtOnce(inv, 50, cause)
			_, err := inv.Wait(context.Background())

			assert.Equal(t, 1, wins, "Cancel calls that returned true")
			assert.Equal(t, int32(1), cancelCalls.Load(), "cancel function runs")
			assert.Equal(t, task.StatusStopped, inv.Status())
			assert.Equal(t, task.ExitCanceled, inv.ExitCode())
			assert.ErrorIs(t, err, task.ErrCanceled)
			assert.ErrorIs(t, err, cause)
			assert.Equal(t, 49, ignored.count(task.EventCancel, task.StatusStopping), "losing Cancel calls ignored")
			assert.Equal(t, 1, ignored.count(task.EventTimeout, task.StatusStopping), "timer ignored visibly")

			time.Sleep(time.Hour) // the work returns late
			synctest.Wait()
			assert.Equal(t, 1, ignored.count(task.EventReturn, task.StatusStopped), "late work return ignored")
			assert.False(t, inv.Cancel(cause), "Cancel after the end")
			assert.Equal(t, 1, ignored.count(task.EventCancel, task.StatusStopped), "Cancel after the end ignored")
			assert.Equal(t, task.StatusStopped, inv.Status())
			require.NoError(t, checkPath(inv.Snapshot().History))
		})
	})

	t.Run("cancels racing timer same instant", func(t *testing.T) {
		// Which event commits first is up to the scheduler. Either way
		// exactly one begins the stop, and the other reaches Ignored.
		for range 50 {
			synctest.Test(t, func(t *testing.T) {
				var cancelCalls atomic.Int32
				tk := task.Task[int]{
					Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
						<-ctx.Done()
						return 0, context.Cause(ctx)
					},
					Cancel: func(ctx context.Context, _ *task.Invocation[int]) error {
						cancelCalls.Add(1)
						return nil
					},
					Timeout: 10 * time.Millisecond,
				}
				var ignored ignoredLog
				inv := tk.Start(context.Background(), task.WithCallbacks(ignored.callbacks()))

				time.Sleep(10 * time.Millisecond) // wakes with the timer
				wins := cancelAtOnce(inv, 50, nil)
				_, err := inv.Wait(context.Background())
				synctest.Wait()

				assert.Equal(t, int32(1), cancelCalls.Load(), "cancel function runs")
				assert.Equal(t, task.StatusStopped, inv.Status())
				switch inv.ExitCode() {
				case task.ExitCanceled:
					assert.Equal(t, 1, wins, "Cancel calls that returned true")
					assert.ErrorIs(t, err, task.ErrCanceled)
					// The timer fired while the run was stopping, or as it
					// stopped, or it was stopped first.
					assert.LessOrEqual(t, ignored.count(task.EventTimeout, task.StatusStopping)+
						ignored.count(task.EventTimeout, task.StatusStopped), 1, "timer ignored visibly")
				case task.ExitTimedOut:
					assert.Equal(t, 0, wins, "Cancel calls that returned true")
					assert.ErrorIs(t, err, task.ErrTimedOut)
				default:
					assert.Failf(t, "unexpected exit code", "%s", inv.ExitCode())
				}
				assert.Equal(t, 50-wins, ignored.count(task.EventCancel, task.StatusStopping)+
					ignored.count(task.EventCancel, task.StatusStopped), "losing Cancel calls ignored")
				require.NoError(t, checkPath(inv.Snapshot().History))
			})
		}
	})
}

func TestCallbacks_ReentryNeverDeadlocks(t *testing.T) {
	t.Run("cancelling callback calls own invocation", func(t *testing.T) {
		var (
			innerCancel  atomic.Bool
			innerCalled  atomic.Bool
			statusInside atomic.Int32
		)
		var ignored ignoredLog
		tk := task.Task[int]{Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}}
		inv := tk.Start(context.Background(), task.WithCallbacks(task.Callbacks[int]{
			Cancelling: func(inv *task.Invocation[int], _ error) {
				innerCalled.Store(true)
				innerCancel.Store(inv.Cancel(errors.New("again")))
				statusInside.Store(int32(inv.Status()))
				_ = inv.Snapshot()
			},
		}), task.WithCallbacks(ignored.callbacks()))

		require.True(t, inv.Cancel(errors.New("first")))
		_, err := waitDone(t, inv)

		assert.ErrorIs(t, err, task.ErrCanceled)
		assert.True(t, innerCalled.Load(), "Cancelling fired")
		assert.False(t, innerCancel.Load(), "Cancel from the Cancelling callback")
		assert.Contains(t, []task.Status{task.StatusStopping, task.StatusStopped}, task.Status(statusInside.Load()))
		assert.Equal(t, 1, ignored.count(task.EventCancel, task.StatusStopping)+
			ignored.count(task.EventCancel, task.StatusStopped), "the inner Cancel ignored visibly")
		assert.Equal(t, task.StatusStopped, inv.Status())
	})

	t.Run("stopped callbacks cancel each other", func(t *testing.T) {
		// Many pairs at once, each cancelled from both ends, so that the two
		// Stopped callbacks of a pair often run at the same time.
		const pairs = 200
		work := func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			<-ctx.Done()
			return 0, context.Cause(ctx)
		}
		for range pairs {
			var a, b *task.Invocation[int]
			aStarted, bStarted := make(chan struct{}), make(chan struct{})
			a = task.Task[int]{Work: work}.Start(context.Background(),
				task.WithCallbacks(task.Callbacks[int]{
					Started: func(*task.Invocation[int]) { close(aStarted) },
					Stopped: func(*task.Invocation[int]) { <-bStarted; b.Cancel(errors.New("a stopped")) },
				}))
			b = task.Task[int]{Work: work}.Start(context.Background(),
				task.WithCallbacks(task.Callbacks[int]{
					Started: func(*task.Invocation[int]) { close(bStarted) },
					Stopped: func(*task.Invocation[int]) { <-aStarted; a.Cancel(errors.New("b stopped")) },
				}))

			<-aStarted
			<-bStarted
			var wg sync.WaitGroup
			wg.Go(func() { a.Cancel(errors.New("outside a")) })
			wg.Go(func() { b.Cancel(errors.New("outside b")) })
			wg.Wait()
			_, errA := waitDone(t, a)
			_, errB := waitDone(t, b)

			assert.ErrorIs(t, errA, task.ErrCanceled)
			assert.ErrorIs(t, errB, task.ErrCanceled)
			// Each side got two Cancel calls, and the one that lost is
			// visible. The other's Stopped callback made its call before
			// Done closed, so the snapshot has it.
			for _, inv := range []*task.Invocation[int]{a, b} {
				cancels := 0
				for _, ig := range inv.Snapshot().Late {
					if ig.Event == task.EventCancel {
						cancels++
					}
				}
				assert.Equal(t, 1, cancels, "ignored Cancel calls")
			}
		}
	})
}

// workPanickingWith returns a work function that panics with v. Its name
// is what a PanicError's stack must show.
func workPanickingWith(v any) task.WorkFunc[int] {
	return func(context.Context, *task.Invocation[int]) (int, error) {
		panic(v)
	}
}

func TestInvocation_PanicsBecomePanicErrors(t *testing.T) {
	diskFull := errors.New("disk full")
	cases := []struct {
		name  string
		value any
		check func(t *testing.T, pe *task.PanicError, err error)
	}{
		{"work panics with string", "index out of range", func(t *testing.T, pe *task.PanicError, _ error) {
			assert.Equal(t, "index out of range", pe.Value)
		}},
		{"work panics with error", diskFull, func(t *testing.T, pe *task.PanicError, err error) {
			assert.Equal(t, diskFull, pe.Value)
			assert.ErrorIs(t, err, diskFull)
		}},
		{"work panics with nil", nil, func(t *testing.T, pe *task.PanicError, _ error) {
			var panicNil *runtime.PanicNilError
			assert.ErrorAs(t, pe.Value.(error), &panicNil)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var failedWith error
			inv := task.Task[int]{Work: workPanickingWith(c.value)}.Start(context.Background(),
				task.WithCallbacks(task.Callbacks[int]{
					Failed: func(_ *task.Invocation[int], err error) { failedWith = err },
				}))
			_, err := waitDone(t, inv)

			assert.Equal(t, task.StatusFailed, inv.Status())
			assert.Equal(t, task.ExitFailed, inv.ExitCode())
			assert.ErrorIs(t, err, task.ErrFailed)
			var pe *task.PanicError
			require.ErrorAs(t, err, &pe)
			c.check(t, pe, err)
			assert.Contains(t, string(pe.Stack), "workPanickingWith", "the work function's frame")
			assert.Same(t, err, failedWith, "the Failed callback's error")
		})
	}

	t.Run("process keeps running after panics", func(t *testing.T) {
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background())
		v, err := waitDone(t, inv)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
	})

	t.Run("cancel function panic is stop failure", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		inv := task.Task[int]{
			Work: func(context.Context, *task.Invocation[int]) (int, error) {
				close(started)
				<-release // ignores its context
				return 0, nil
			},
			Cancel: func(context.Context, *task.Invocation[int]) error { panic("kill failed") },
		}.Start(context.Background())
		<-started
		require.True(t, inv.Cancel(nil))
		_, err := waitDone(t, inv)

		assert.Equal(t, task.StatusUnknown, inv.Status())
		assert.Equal(t, task.ExitCancelFailed, inv.ExitCode())
		assert.ErrorIs(t, err, task.ErrStopFailed)
		assert.ErrorIs(t, err, task.ErrCanceled)
		var pe *task.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "kill failed", pe.Value)
	})

	t.Run("callback panic kept run finishes", func(t *testing.T) {
		var changed atomic.Int32
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 3, nil })}.
			Start(context.Background(),
				task.WithCallbacks(task.Callbacks[int]{
					Started:   func(*task.Invocation[int]) { panic("started callback") },
					Completed: func(*task.Invocation[int], int) { panic(errors.New("completed callback")) },
				}),
				task.WithCallbacks(task.Callbacks[int]{
					Changed: func(*task.Invocation[int], task.Transition) { changed.Add(1) },
				}))
		v, err := waitDone(t, inv)

		require.NoError(t, err)
		assert.Equal(t, 3, v)
		assert.Equal(t, int32(3), changed.Load(), "the other set's callbacks still ran")
		panics := inv.Snapshot().Panics
		require.Len(t, panics, 2)
		assert.Equal(t, "started callback", panics[0].Value)
		assert.EqualError(t, panics[1].Value.(error), "completed callback")
	})
}

func TestInvocation_TimeoutsReleaseEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20,000 runs")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// One parent shared by all runs and alive to the end: a run that kept
	// its registration with it would stay reachable.
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	// Done makes the channel here, outside the bubbles, since a channel made
	// in a bubble cannot be closed from outside it.
	_ = parent.Done()

	// The runtime keeps the descriptor of every goroutine it ever made for
	// reuse, so the baseline is taken after a first round has made them.
	timeOutRuns(t, parent)
	baseline := heapInUse()
	timeOutRuns(t, parent)
	after := heapInUse()

	// 10,000 leaked runs would hold several MiB.
	assert.Less(t, after, baseline+1<<20, "heap in use: %d bytes before, %d after", baseline, after)
}

// timeOutRuns starts 10,000 runs of a work that waits for its context,
// under a Timeout of one millisecond, and checks that each timed out.
// Then it checks that nothing of the library keeps any of them reachable:
// no goroutine, no timer and no registration with parent.
func timeOutRuns(t *testing.T, parent context.Context) {
	const runs = 10_000
	refs := make([]weak.Pointer[task.Invocation[int]], 0, runs)
	synctest.Test(t, func(t *testing.T) {
		tk := task.Task[int]{
			Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
				<-ctx.Done()
				return 0, context.Cause(ctx)
			},
			Timeout: time.Millisecond,
		}
		invs := make([]*task.Invocation[int], runs)
		for i := range invs {
			invs[i] = tk.Start(parent)
			refs = append(refs, weak.Make(invs[i]))
		}
		for _, inv := range invs {
			_, err := inv.Wait(context.Background())
			require.ErrorIs(t, err, task.ErrTimedOut)
			require.Equal(t, task.StatusStopped, inv.Status())
			require.Equal(t, task.ExitTimedOut, inv.ExitCode())
		}
		synctest.Wait()
		assert.Empty(t, libraryGoroutines(), "goroutines of the library left running")
	})

	runtime.GC()
	alive := 0
	for _, ref := range refs {
		if ref.Value() != nil {
			alive++
		}
	}
	assert.Zero(t, alive, "runs still reachable after they finished")
}

// heapInUse returns the bytes of heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func TestTask_TimeoutLimits(t *testing.T) {
	t.Run("zero timeout means no limit", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tk := task.Task[int]{Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
				select {
				case <-ctx.Done():
					return 0, ctx.Err()
				case <-time.After(1000 * time.Hour):
					return 5, nil
				}
			}}
			inv := tk.Start(context.Background())
			v, err := inv.Wait(context.Background())

			require.NoError(t, err)
			assert.Equal(t, 5, v)
			assert.Equal(t, task.ExitCompleted, inv.ExitCode())
		})
	})

	t.Run("zero stop timeout waits for work", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tk := task.Task[int]{Work: func(context.Context, *task.Invocation[int]) (int, error) {
				time.Sleep(1000 * time.Hour) // ignores its context
				return 5, nil
			}}
			inv := tk.Start(context.Background())
			synctest.Wait()
			inv.Cancel(nil)

			time.Sleep(999 * time.Hour)
			assert.Equal(t, task.StatusStopping, inv.Status(), "still waiting for the work")
			_, err := inv.Wait(context.Background())
			assert.ErrorIs(t, err, task.ErrCanceled)
			assert.Equal(t, task.StatusStopped, inv.Status())
		})
	})

	negative := []struct {
		name    string
		task    task.Task[int]
		message string
	}{
		{"negative timeout rejected with value", task.Task[int]{Timeout: -time.Millisecond}, "Timeout -1ms"},
		{"negative stop timeout rejected with value", task.Task[int]{StopTimeout: -2 * time.Second},
			"StopTimeout -2s"},
		{"first of two negatives named", task.Task[int]{Timeout: -1, StopTimeout: -1}, "Timeout -1ns"},
	}
	for _, c := range negative {
		t.Run(c.name, func(t *testing.T) {
			tk := c.task
			tk.Work = task.Func(func(context.Context) (int, error) { return 0, nil })
			err := tk.Validate()
			require.ErrorIs(t, err, task.ErrInvalid)
			assert.Contains(t, err.Error(), c.message)

			var failed atomic.Int32
			inv := tk.Start(context.Background(), task.WithCallbacks(task.Callbacks[int]{
				Failed: func(*task.Invocation[int], error) { failed.Add(1) },
			}))
			_, runErr := inv.Result()
			assert.Equal(t, task.StatusFailed, inv.Status())
			assert.Equal(t, task.ExitFailed, inv.ExitCode())
			assert.ErrorIs(t, runErr, task.ErrInvalid)
			assert.Contains(t, runErr.Error(), c.message)
			assert.Len(t, inv.Snapshot().History, 1)
			assert.Equal(t, int32(1), failed.Load(), "Failed callbacks")
		})
	}
}

func TestTask_NilInputsNeverPanic(t *testing.T) {
	returnOne := task.Func(func(context.Context) (int, error) { return 1, nil })

	t.Run("nil work fails from birth", func(t *testing.T) {
		var inv *task.Invocation[int]
		require.NotPanics(t, func() { inv = task.Task[int]{}.Start(context.Background()) })
		_, err := inv.Result()
		assert.Equal(t, task.StatusFailed, inv.Status())
		assert.ErrorIs(t, err, task.ErrInvalid)
		assert.ErrorIs(t, err, task.ErrFailed)
		assert.Contains(t, err.Error(), "Work")
		assert.False(t, inv.Snapshot().WorkRunning)
		assert.Nil(t, task.Func[int](nil), "Func(nil)")
	})

	t.Run("nil parent context fails from birth", func(t *testing.T) {
		var inv *task.Invocation[int]
		require.NotPanics(t, func() {
			inv = task.Task[int]{Work: returnOne}.Start(nil) //nolint:staticcheck // the case under test
		})
		_, err := inv.Result()
		assert.Equal(t, task.StatusFailed, inv.Status())
		assert.ErrorIs(t, err, task.ErrInvalid)
		assert.Contains(t, err.Error(), "parent context")
	})

	t.Run("nil callback fields are skipped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// Every path through the lifecycle, with every field nil.
			tasks := []task.Task[int]{
				{Work: returnOne},
				{Work: task.Func(func(context.Context) (int, error) { return 0, errors.New("x") })},
				{Work: task.Func(func(context.Context) (int, error) { return 0, task.Permanent(errors.New("x")) })},
				{Work: task.Func(func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, nil }),
					Timeout: time.Second},
				{Work: task.Func(func(ctx context.Context) (int, error) { time.Sleep(time.Hour); return 0, nil }),
					Timeout: time.Second, StopTimeout: time.Second},
				{Work: task.Func(func(ctx context.Context) (int, error) { time.Sleep(time.Hour); return 0, nil }),
					Timeout:     time.Second,
					Cancel:      func(context.Context, *task.Invocation[int]) error { return errors.New("x") },
					StopTimeout: time.Second},
			}
			for _, tk := range tasks {
				inv := tk.Start(context.Background(), task.WithCallbacks(task.Callbacks[int]{}), task.Option{})
				_, _ = inv.Wait(context.Background())
				inv.Abandon(nil)
				inv.Cancel(nil)
				inv.ReportProgress(1, 2)
				assert.True(t, inv.Status().Finished())
			}
			time.Sleep(2 * time.Hour) // the works that ignore their context return
		})
	})

	t.Run("nil cause to cancel", func(t *testing.T) {
		var workCause, workErr error
		started := make(chan struct{})
		tk := task.Task[int]{Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			close(started)
			<-ctx.Done()
			workCause, workErr = context.Cause(ctx), ctx.Err()
			return 0, nil
		}}
		inv := tk.Start(context.Background())
		<-started
		require.True(t, inv.Cancel(nil))
		_, err := waitDone(t, inv)

		assert.Equal(t, task.StatusStopped, inv.Status())
		assert.Equal(t, task.ExitCanceled, inv.ExitCode())
		assert.ErrorIs(t, err, task.ErrCanceled)
		assert.ErrorIs(t, workCause, task.ErrCanceled)
		assert.Equal(t, context.Canceled, workErr)
	})

	t.Run("nil error in permanent completes", func(t *testing.T) {
		assert.NoError(t, task.Permanent(nil))
		tk := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 4, task.Permanent(nil) })}
		v, err := waitDone(t, tk.Start(context.Background()))
		require.NoError(t, err)
		assert.Equal(t, 4, v)
	})

	t.Run("nil reason to abandon", func(t *testing.T) {
		failure := errors.New("bad row")
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 0, failure })}.
			Start(context.Background())
		_, _ = waitDone(t, inv)
		require.True(t, inv.Abandon(nil))
		_, err := inv.Result()
		assert.Equal(t, task.StatusAbandoned, inv.Status())
		assert.ErrorIs(t, err, task.ErrAbandoned)
		assert.ErrorIs(t, err, failure)
	})

	t.Run("nil wait context rejected", func(t *testing.T) {
		inv := task.Task[int]{Work: returnOne}.Start(context.Background())
		_, err := inv.Wait(nil) //nolint:staticcheck // the case under test
		assert.ErrorIs(t, err, task.ErrInvalid)
		_, err = waitDone(t, inv)
		assert.NoError(t, err)
	})

	t.Run("callbacks of wrong type rejected", func(t *testing.T) {
		inv := task.Task[int]{Work: returnOne}.Start(context.Background(),
			task.WithCallbacks(task.Callbacks[string]{}))
		_, err := inv.Result()
		assert.Equal(t, task.StatusFailed, inv.Status())
		assert.ErrorIs(t, err, task.ErrInvalid)
		assert.Contains(t, err.Error(), "string")
	})
}

func TestInvocation_CompletedRunIgnoresLateEvents(t *testing.T) {
	t.Run("every later event changes nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var (
				workCalls, cancelCalls atomic.Int32
				workCtx                context.Context
			)
			parent, endParent := context.WithCancel(context.Background())
			defer endParent()
			tk := task.Task[int]{
				Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
					workCalls.Add(1)
					workCtx = ctx
					time.Sleep(time.Millisecond)
					return 9, nil
				},
				Cancel: func(context.Context, *task.Invocation[int]) error {
					cancelCalls.Add(1)
					return nil
				},
				Timeout:     10 * time.Millisecond,
				StopTimeout: 10 * time.Millisecond,
			}
			var ignored ignoredLog
			inv := tk.Start(parent, task.WithCallbacks(ignored.callbacks()))
			_, err := inv.Wait(context.Background())
			require.NoError(t, err)
			synctest.Wait()
			before := inv.Snapshot()

			// The work's context ends once the run has finished, and the
			// work, which has returned, cannot report anything again.
			assert.Error(t, workCtx.Err(), "work's context after completion")
			// The timer was stopped, and the parent's end is no longer
			// the run's concern.
			time.Sleep(time.Hour)
			endParent()
			synctest.Wait()
			assert.Zero(t, ignored.len(), "events after completion without a call")

			// Calls after the end are rejected visibly, and the cancel
			// function never runs, so it cannot return late.
			assert.False(t, inv.Cancel(errors.New("late")))
			assert.False(t, inv.Abandon(errors.New("late")))
			assert.False(t, inv.ReportProgress(1, 1))
			synctest.Wait()
			assert.Equal(t, 1, ignored.count(task.EventCancel, task.StatusCompleted))
			assert.Equal(t, 1, ignored.count(task.EventAbandon, task.StatusCompleted))
			assert.Equal(t, 1, ignored.count(task.EventProgress, task.StatusCompleted))

			after := inv.Snapshot()
			assert.Equal(t, int32(1), workCalls.Load(), "work calls")
			assert.Zero(t, cancelCalls.Load(), "cancel function calls")
			assert.Equal(t, before.History, after.History)
			assert.Equal(t, task.StatusCompleted, after.Status)
			assert.Equal(t, task.ExitCompleted, after.ExitCode)
			assert.Equal(t, 9, after.Result)
			assert.NoError(t, after.Err)
			assert.Equal(t, before.FinishedAt, after.FinishedAt)
		})
	})

	t.Run("completion racing timer same instant", func(t *testing.T) {
		for range 50 {
			synctest.Test(t, func(t *testing.T) {
				tk := task.Task[int]{
					Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
						time.Sleep(10 * time.Millisecond) // ignores its context
						return 9, nil
					},
					Timeout: 10 * time.Millisecond,
				}
				var ignored ignoredLog
				inv := tk.Start(context.Background(), task.WithCallbacks(ignored.callbacks()))
				_, _ = inv.Wait(context.Background())
				time.Sleep(time.Hour)
				synctest.Wait()

				s := inv.Snapshot()
				require.NoError(t, checkPath(s.History))
				switch s.Status {
				case task.StatusCompleted:
					// The timer either was stopped or fired as the run
					// completed and was ignored.
					assert.LessOrEqual(t, ignored.count(task.EventTimeout, task.StatusCompleted), 1)
					assert.Equal(t, ignored.len(), ignored.count(task.EventTimeout, task.StatusCompleted))
				case task.StatusStopped:
					assert.Equal(t, task.ExitTimedOut, s.ExitCode)
					assert.Equal(t, 1, ignored.count(task.EventReturn, task.StatusStopping),
						"the return that confirmed the stop")
				default:
					assert.Failf(t, "unexpected status", "%s", s.Status)
				}
			})
		}
	})
}

func TestInvocation_WorkGoexitFails(t *testing.T) {
	t.Run("work exits without returning", func(t *testing.T) {
		inv := task.Task[int]{Work: func(context.Context, *task.Invocation[int]) (int, error) {
			runtime.Goexit()
			return 0, nil
		}}.Start(context.Background())
		_, err := waitDone(t, inv)

		assert.Equal(t, task.StatusFailed, inv.Status())
		assert.Equal(t, task.ExitFailed, inv.ExitCode())
		assert.ErrorIs(t, err, task.ErrFailed)
		assert.Contains(t, err.Error(), "work function exited without returning")
		assert.False(t, inv.Snapshot().WorkRunning)
	})

	t.Run("cancel function exits without returning", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		inv := task.Task[int]{
			Work: func(context.Context, *task.Invocation[int]) (int, error) {
				close(started)
				<-release // ignores its context
				return 0, nil
			},
			Cancel: func(context.Context, *task.Invocation[int]) error {
				runtime.Goexit()
				return nil
			},
		}.Start(context.Background())
		<-started
		require.True(t, inv.Cancel(nil))
		_, err := waitDone(t, inv)

		assert.Equal(t, task.StatusUnknown, inv.Status())
		assert.Equal(t, task.ExitCancelFailed, inv.ExitCode())
		assert.ErrorIs(t, err, task.ErrStopFailed)
		assert.Contains(t, err.Error(), "cancel function exited without returning")
	})

	t.Run("started callback exits without returning", func(t *testing.T) {
		var workCalls atomic.Int32
		inv := task.Task[int]{Work: func(context.Context, *task.Invocation[int]) (int, error) {
			workCalls.Add(1)
			return 0, nil
		}}.Start(context.Background(), task.WithCallbacks(task.Callbacks[int]{
			Started: func(*task.Invocation[int]) { runtime.Goexit() },
		}))
		_, err := waitDone(t, inv)

		assert.Equal(t, task.StatusFailed, inv.Status())
		assert.ErrorIs(t, err, task.ErrFailed)
		assert.Contains(t, err.Error(), "exited without returning")
		assert.Zero(t, workCalls.Load(), "work calls")
	})

	t.Run("completed callback exits without returning", func(t *testing.T) {
		var changed atomic.Int32
		done := make(chan struct{})
		var inv *task.Invocation[int]
		go func() {
			defer close(done)
			inv = task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 2, nil })}.
				Start(context.Background(),
					task.WithCallbacks(task.Callbacks[int]{
						Completed: func(*task.Invocation[int], int) { runtime.Goexit() },
					}),
					task.WithCallbacks(task.Callbacks[int]{
						Changed: func(*task.Invocation[int], task.Transition) { changed.Add(1) },
					}))
		}()
		<-done
		v, err := waitDone(t, inv)

		require.NoError(t, err)
		assert.Equal(t, 2, v)
		assert.Equal(t, int32(3), changed.Load(), "the other set's callbacks still ran")
		panics := inv.Snapshot().Panics
		require.Len(t, panics, 1)
		assert.True(t, strings.Contains(panics[0].Error(), "exited without returning"), panics[0].Error())
	})
}
