package task_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
	"github.com/tasklife/task/tasktest"
)

// record is what a test's callbacks saw, in order.
type record struct {
	mu      sync.Mutex
	events  []string // "Started", "Changed STARTING", "Ignored return in UNKNOWN", ...
	busy    atomic.Int32
	overlap atomic.Bool
}

func (r *record) add(s string) {
	if r.busy.Add(1) > 1 {
		r.overlap.Store(true)
	}
	defer r.busy.Add(-1)
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *record) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *record) callbacks() task.Callbacks[int] {
	type inv = *task.Invocation[int]
	return task.Callbacks[int]{
		Started:      func(inv) { r.add("Started") },
		Completed:    func(_ inv, v int) { r.add("Completed") },
		Failed:       func(_ inv, err error) { r.add("Failed") },
		Cancelling:   func(_ inv, cause error) { r.add("Cancelling") },
		TimedOut:     func(inv) { r.add("TimedOut") },
		Stopped:      func(inv) { r.add("Stopped") },
		StopFailed:   func(_ inv, err error) { r.add("StopFailed") },
		StopTimedOut: func(inv) { r.add("StopTimedOut") },
		Abandoned:    func(_ inv, err error) { r.add("Abandoned") },
		Progress:     func(_ inv, done, total int64) { r.add("Progress") },
		Ignored: func(_ inv, e task.Ignored[int]) {
			r.add("Ignored " + e.Event.String() + " in " + e.Status.String())
		},
		Changed: func(_ inv, tr task.Transition) { r.add("Changed " + tr.To.String()) },
	}
}

func statuses(inv *task.Invocation[int]) []task.Status {
	var got []task.Status
	for _, tr := range inv.Snapshot().History {
		got = append(got, tr.To)
	}
	return got
}

func wait(t *testing.T, inv *task.Invocation[int]) (int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := inv.Wait(ctx)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "run did not finish")
	return v, err
}

func TestInvocation_Complete(t *testing.T) {
	rec := &record{}
	tk := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 42, nil })}
	inv := tk.Start(context.Background(), task.WithCallbacks(rec.callbacks()))

	v, err := wait(t, inv)

	require.NoError(t, err)
	assert.Equal(t, 42, v)
	assert.Equal(t, task.StatusCompleted, inv.Status())
	assert.Equal(t, task.ExitCompleted, inv.ExitCode())
	assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStarted, task.StatusCompleted}, statuses(inv))
	assert.Equal(t, []string{"Changed STARTING", "Started", "Changed STARTED", "Completed", "Changed COMPLETED"}, rec.list())
	assert.Len(t, inv.ID(), 32)
}

func TestInvocation_Fail(t *testing.T) {
	errDisk := errors.New("disk full")
	t.Run("error matches sentinel and cause", func(t *testing.T) {
		rec := &record{}
		tk := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 0, errDisk })}
		inv := tk.Start(context.Background(), task.WithCallbacks(rec.callbacks()))
		_, err := wait(t, inv)
		assert.ErrorIs(t, err, task.ErrFailed)
		assert.ErrorIs(t, err, errDisk)
		assert.Equal(t, "task: failed: disk full", err.Error())
		assert.Equal(t, task.ExitFailed, inv.ExitCode())
		assert.Equal(t, []string{"Changed STARTING", "Started", "Changed STARTED", "Failed", "Changed FAILED"}, rec.list())
	})
	t.Run("permanent error abandons", func(t *testing.T) {
		rec := &record{}
		tk := task.Task[int]{Work: task.Func(func(context.Context) (int, error) {
			return 0, task.Permanent(errDisk)
		})}
		inv := tk.Start(context.Background(), task.WithCallbacks(rec.callbacks()))
		_, err := wait(t, inv)
		assert.ErrorIs(t, err, task.ErrAbandoned)
		assert.ErrorIs(t, err, errDisk)
		assert.NotErrorIs(t, err, task.ErrFailed)
		assert.Equal(t, task.StatusAbandoned, inv.Status())
		assert.Equal(t, task.ExitFailed, inv.ExitCode())
		assert.Contains(t, rec.list(), "Abandoned")
		assert.NotContains(t, rec.list(), "Failed")
	})
	t.Run("panic becomes PanicError", func(t *testing.T) {
		tk := task.Task[int]{Work: func(context.Context, *task.Invocation[int]) (int, error) {
			panic("boom")
		}}
		_, err := wait(t, tk.Start(context.Background()))
		assert.ErrorIs(t, err, task.ErrFailed)
		var p *task.PanicError
		require.ErrorAs(t, err, &p)
		assert.Equal(t, "boom", p.Value)
		assert.Contains(t, string(p.Stack), "lifecycle_test.go")
	})
	t.Run("goexit fails the run", func(t *testing.T) {
		tk := task.Task[int]{Work: func(context.Context, *task.Invocation[int]) (int, error) {
			runtime.Goexit()
			return 1, nil
		}}
		inv := tk.Start(context.Background())
		_, err := wait(t, inv)
		assert.ErrorIs(t, err, task.ErrFailed)
		assert.Contains(t, err.Error(), "exited without returning")
		assert.Equal(t, task.StatusFailed, inv.Status())
	})
}

func TestInvocation_Cancel(t *testing.T) {
	errUser := errors.New("user request")
	t.Run("default cancel waits for work", func(t *testing.T) {
		rec := &record{}
		work := tasktest.NewWork[int](t)
		inv := task.Task[int]{Work: work.Run}.
			Start(context.Background(), task.WithCallbacks(rec.callbacks()))
		work.WaitBegun()

		assert.True(t, inv.Cancel(errUser), "first cancel")
		assert.False(t, inv.Cancel(errUser), "second cancel")
		_, err := wait(t, inv)

		assert.ErrorIs(t, err, task.ErrCanceled)
		assert.ErrorIs(t, err, errUser)
		assert.Equal(t, task.StatusStopped, inv.Status())
		assert.Equal(t, task.ExitCanceled, inv.ExitCode())
		snap := inv.Snapshot()
		// The second Cancel and the work's return race, so either may be
		// first.
		require.Len(t, snap.Late, 2, "second cancel and the work's return")
		late := map[task.Event]task.Ignored[int]{}
		for _, ig := range snap.Late {
			late[ig.Event] = ig
		}
		require.Contains(t, late, task.EventCancel)
		require.Contains(t, late, task.EventFail)
		// The work saw the same cause, so its return matched it too.
		assert.ErrorIs(t, late[task.EventFail].Err, errUser)
		assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStarted,
			task.StatusStopping, task.StatusStopped}, statuses(inv))
	})
	t.Run("cancel before work never runs it", func(t *testing.T) {
		var ran atomic.Bool
		var inv *task.Invocation[int]
		cb := task.Callbacks[int]{Changed: func(i *task.Invocation[int], tr task.Transition) {
			if tr.To == task.StatusStarting {
				assert.True(t, i.Cancel(nil))
			}
		}}
		inv = task.Task[int]{Work: func(context.Context, *task.Invocation[int]) (int, error) {
			ran.Store(true)
			return 1, nil
		}}.Start(context.Background(), task.WithCallbacks(cb))

		assert.Equal(t, task.StatusStopped, inv.Status(), "stopped when Start returns")
		_, err := wait(t, inv)
		assert.ErrorIs(t, err, task.ErrCanceled)
		assert.False(t, ran.Load())
		assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStopping, task.StatusStopped}, statuses(inv))
	})
	t.Run("cancel function confirms early", func(t *testing.T) {
		var rec tasktest.Recorder[int]
		work := tasktest.NewWork[int](t)
		work.IgnoreContext()
		tk := task.Task[int]{
			Work:   work.Run,
			Cancel: func(context.Context, *task.Invocation[int]) error { return nil },
		}
		inv := tk.Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
		work.WaitBegun()
		inv.Cancel(nil)
		_, err := wait(t, inv)
		assert.ErrorIs(t, err, task.ErrCanceled)
		assert.True(t, inv.Snapshot().WorkRunning, "work still running after the stop")

		work.Return(5)
		rec.WaitIgnored(t, task.EventReturn)
		assert.False(t, inv.Snapshot().WorkRunning)
		late := inv.Snapshot().Late
		require.Len(t, late, 1)
		assert.Equal(t, task.EventReturn, late[0].Event)
		assert.Equal(t, task.StatusStopped, late[0].Status)
		assert.Equal(t, 5, late[0].Value)
		assert.Equal(t, task.StatusStopped, inv.Status())
	})
	t.Run("cancel function fails", func(t *testing.T) {
		errKill := errors.New("kill: permission denied")
		rec := &record{}
		work := tasktest.NewWork[int](t)
		work.Hang()
		tk := task.Task[int]{
			Work:   work.Run,
			Cancel: func(context.Context, *task.Invocation[int]) error { return errKill },
		}
		inv := tk.Start(context.Background(), task.WithCallbacks(rec.callbacks()))
		work.WaitBegun()
		inv.Cancel(errUser)
		_, err := wait(t, inv)

		assert.Equal(t, task.StatusUnknown, inv.Status())
		assert.Equal(t, task.ExitCancelFailed, inv.ExitCode())
		assert.ErrorIs(t, err, task.ErrStopFailed)
		assert.ErrorIs(t, err, errKill)
		assert.ErrorIs(t, err, task.ErrCanceled)
		assert.ErrorIs(t, err, errUser)
		assert.Contains(t, rec.list(), "StopFailed")
	})
	t.Run("cancel function panics", func(t *testing.T) {
		work := tasktest.NewWork[int](t)
		work.Hang()
		tk := task.Task[int]{
			Work:   work.Run,
			Cancel: func(context.Context, *task.Invocation[int]) error { panic("cannot stop") },
		}
		inv := tk.Start(context.Background())
		work.WaitBegun()
		inv.Cancel(nil)
		_, err := wait(t, inv)
		assert.Equal(t, task.ExitCancelFailed, inv.ExitCode())
		var p *task.PanicError
		require.ErrorAs(t, err, &p)
		assert.Equal(t, "cannot stop", p.Value)
	})
	t.Run("parent context end cancels", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		work := tasktest.NewWork[int](t)
		inv := task.Task[int]{Work: work.Run}.Start(parent)
		work.WaitBegun()
		cancel()
		_, err := wait(t, inv)
		assert.ErrorIs(t, err, task.ErrCanceled)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, task.ExitCanceled, inv.ExitCode())
	})
	t.Run("parent already ended", func(t *testing.T) {
		parent, cancel := context.WithCancelCause(context.Background())
		cancel(errUser)
		var ran atomic.Bool
		inv := task.Task[int]{Work: func(context.Context, *task.Invocation[int]) (int, error) {
			ran.Store(true)
			return 1, nil
		}}.Start(parent)
		assert.Equal(t, task.StatusStopped, inv.Status())
		_, err := wait(t, inv)
		assert.ErrorIs(t, err, errUser)
		assert.False(t, ran.Load())
	})
	t.Run("parent values reach work", func(t *testing.T) {
		type key struct{}
		parent := context.WithValue(context.Background(), key{}, "v")
		inv := task.Task[int]{Work: task.Func(func(ctx context.Context) (int, error) {
			if ctx.Value(key{}) != "v" {
				return 0, errors.New("value missing")
			}
			return 1, nil
		})}.Start(parent)
		_, err := wait(t, inv)
		assert.NoError(t, err)
	})
	t.Run("cancel after completion ignored", func(t *testing.T) {
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background())
		_, err := wait(t, inv)
		require.NoError(t, err)
		assert.False(t, inv.Cancel(errUser))
		assert.Equal(t, task.StatusCompleted, inv.Status())
		late := inv.Snapshot().Late
		require.Len(t, late, 1)
		assert.Equal(t, task.EventCancel, late[0].Event)
		assert.Equal(t, errUser, late[0].Err)
	})
}

func TestInvocation_Timeout(t *testing.T) {
	t.Run("timeout stops work", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &record{}
			start := time.Now()
			work := tasktest.NewWork[int](t)
			inv := task.Task[int]{Work: work.Run, Timeout: 30 * time.Second}.
				Start(context.Background(), task.WithCallbacks(rec.callbacks()))

			_, err := inv.Wait(context.Background())

			assert.Equal(t, 30*time.Second, time.Since(start))
			assert.ErrorIs(t, err, task.ErrTimedOut)
			assert.Equal(t, "task: timed out after 30s", err.Error())
			assert.Equal(t, task.StatusStopped, inv.Status())
			assert.Equal(t, task.ExitTimedOut, inv.ExitCode())
			assert.Equal(t, []string{"Changed STARTING", "Started", "Changed STARTED",
				"TimedOut", "Cancelling", "Changed STOPPING", "Ignored fail in STOPPING",
				"Stopped", "Changed STOPPED"}, rec.list())
		})
	})
	t.Run("stop timeout ends unknown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			work := tasktest.NewWork[int](t)
			work.IgnoreContext()
			inv := task.Task[int]{
				Work: work.Run,
				Cancel: func(ctx context.Context, _ *task.Invocation[int]) error {
					<-ctx.Done()
					return ctx.Err() // answers after the stop timeout: too late
				},
				Timeout:     30 * time.Second,
				StopTimeout: 10 * time.Second,
			}.Start(context.Background())

			start := time.Now()
			_, err := inv.Wait(context.Background())

			assert.Equal(t, 40*time.Second, time.Since(start))
			assert.Equal(t, task.StatusUnknown, inv.Status())
			assert.Equal(t, task.ExitCancelTimedOut, inv.ExitCode())
			assert.ErrorIs(t, err, task.ErrStopTimedOut)
			assert.ErrorIs(t, err, task.ErrTimedOut)
			assert.True(t, inv.Snapshot().WorkRunning)

			synctest.Wait() // the cancel function answers
			work.Return(3)
			synctest.Wait()
			snap := inv.Snapshot()
			assert.False(t, snap.WorkRunning)
			require.Len(t, snap.Late, 2)
			assert.Equal(t, task.EventStopFail, snap.Late[0].Event, "cancel function's late answer")
			assert.Equal(t, task.EventReturn, snap.Late[1].Event)
			assert.Equal(t, task.ExitCancelTimedOut, inv.ExitCode(), "late answer changes nothing")
		})
	})
	t.Run("timeout before begin", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			block := make(chan struct{})
			var ran atomic.Bool
			cb := task.Callbacks[int]{Changed: func(_ *task.Invocation[int], tr task.Transition) {
				if tr.To == task.StatusStarting {
					<-block
				}
			}}
			var inv *task.Invocation[int]
			done := make(chan struct{})
			go func() {
				inv = task.Task[int]{
					Work: func(context.Context, *task.Invocation[int]) (int, error) {
						ran.Store(true)
						return 1, nil
					},
					Timeout: time.Second,
				}.Start(context.Background(), task.WithCallbacks(cb))
				close(done)
			}()
			time.Sleep(2 * time.Second) // fake time: the timeout fires during the callback
			close(block)
			<-done
			_, err := inv.Wait(context.Background())
			assert.ErrorIs(t, err, task.ErrTimedOut)
			assert.False(t, ran.Load())
		})
	})
	t.Run("completion disarms timer", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			inv := task.Task[int]{
				Work:    task.Func(func(context.Context) (int, error) { return 1, nil }),
				Timeout: time.Hour,
			}.Start(context.Background())
			_, err := inv.Wait(context.Background())
			require.NoError(t, err)
			// synctest.Test fails if a timer of the run is left to fire
			// after this function returns; advance past it to be sure.
			time.Sleep(2 * time.Hour)
			assert.Empty(t, inv.Snapshot().Late)
		})
	})
}

func TestInvocation_Abandon(t *testing.T) {
	errReason := errors.New("bad record")
	errWork := errors.New("disk full")
	t.Run("failed run abandoned", func(t *testing.T) {
		rec := &record{}
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 0, errWork })}.
			Start(context.Background(), task.WithCallbacks(rec.callbacks()))
		_, _ = wait(t, inv)
		require.True(t, inv.Abandon(errReason))
		assert.False(t, inv.Abandon(errReason), "second abandon")

		_, err := inv.Result()
		assert.ErrorIs(t, err, task.ErrAbandoned)
		assert.ErrorIs(t, err, errReason)
		assert.ErrorIs(t, err, errWork)
		assert.Equal(t, task.StatusAbandoned, inv.Status())
		assert.Equal(t, task.ExitFailed, inv.ExitCode())
		assert.Contains(t, rec.list(), "Abandoned")
	})
	t.Run("completed run not abandoned", func(t *testing.T) {
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background())
		_, _ = wait(t, inv)
		assert.False(t, inv.Abandon(errReason))
		assert.Equal(t, task.StatusCompleted, inv.Status())
	})
	t.Run("running run not abandoned", func(t *testing.T) {
		work := tasktest.NewWork[int](t)
		inv := task.Task[int]{Work: work.Run}.Start(context.Background())
		work.WaitBegun()
		assert.False(t, inv.Abandon(errReason))
		assert.Equal(t, task.StatusStarted, inv.Status())
		inv.Cancel(nil)
		_, _ = wait(t, inv)
		assert.True(t, inv.Abandon(errReason), "stopped run")
	})
}

func TestTask_StartInvalid(t *testing.T) {
	work := task.Func(func(context.Context) (int, error) { return 1, nil })
	cases := []struct {
		name string
		task task.Task[int]
		ctx  context.Context
		opts []task.Option
		want string
	}{
		{"nil work", task.Task[int]{}, context.Background(), nil, "Work: nil"},
		{"negative timeout", task.Task[int]{Work: work, Timeout: -time.Second}, context.Background(), nil, "Timeout -1s"},
		{"negative stop timeout", task.Task[int]{Work: work, StopTimeout: -time.Second}, context.Background(), nil, "StopTimeout -1s"},
		{"nil parent context", task.Task[int]{Work: work}, nil, nil, "parent context: nil"},
		{"callbacks of another type", task.Task[int]{Work: work}, context.Background(),
			[]task.Option{task.WithCallbacks(task.Callbacks[string]{})}, "Callbacks[string]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &record{}
			opts := append([]task.Option{task.WithCallbacks(rec.callbacks())}, c.opts...)
			inv := c.task.Start(c.ctx, opts...)

			select {
			case <-inv.Done():
			default:
				t.Fatal("Done not closed when Start returned")
			}
			_, err := inv.Result()
			assert.ErrorIs(t, err, task.ErrInvalid)
			assert.ErrorIs(t, err, task.ErrFailed)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, task.StatusFailed, inv.Status())
			assert.Equal(t, task.ExitFailed, inv.ExitCode())
			assert.Equal(t, []task.Status{task.StatusFailed}, statuses(inv))
			assert.Equal(t, []string{"Failed", "Changed FAILED"}, rec.list())
		})
	}
}

func TestInvocation_Wait(t *testing.T) {
	t.Run("finished outcome wins over ended context", func(t *testing.T) {
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 9, nil })}.
			Start(context.Background())
		_, _ = wait(t, inv)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		v, err := inv.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 9, v)
	})
	t.Run("context ends first", func(t *testing.T) {
		work := tasktest.NewWork[int](t)
		inv := task.Task[int]{Work: work.Run}.Start(context.Background())
		defer func() { inv.Cancel(nil); _, _ = wait(t, inv) }()
		work.WaitBegun()
		errGiveUp := errors.New("give up")
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errGiveUp)
		_, err := inv.Wait(ctx)
		assert.Equal(t, errGiveUp, err)
		assert.Equal(t, task.StatusStarted, inv.Status())
	})
	t.Run("nil context rejected", func(t *testing.T) {
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background())
		_, err := inv.Wait(nil) //nolint:staticcheck // testing the nil case
		assert.ErrorIs(t, err, task.ErrInvalid)
		_, _ = wait(t, inv)
	})
	t.Run("result empty before finish", func(t *testing.T) {
		work := tasktest.NewWork[int](t)
		inv := task.Task[int]{Work: work.Run}.Start(context.Background())
		work.WaitBegun()
		v, err := inv.Result()
		assert.Zero(t, v)
		assert.NoError(t, err)
		inv.Cancel(nil)
		_, _ = wait(t, inv)
	})
}

func TestCallbacks_Guarantees(t *testing.T) {
	t.Run("callback may call its invocation", func(t *testing.T) {
		var statusSeen task.Status
		cb := task.Callbacks[int]{Cancelling: func(inv *task.Invocation[int], _ error) {
			statusSeen = inv.Status()
			assert.False(t, inv.Cancel(nil), "cancel inside Cancelling")
			assert.False(t, inv.Abandon(nil), "abandon while stopping")
			_ = inv.Snapshot()
		}}
		work := tasktest.NewWork[int](t)
		work.IgnoreContext() // stays STOPPING until the Cancelling callback has run
		inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithCallbacks(cb))
		work.WaitBegun()
		inv.Cancel(nil) // runs the Cancelling callback before it returns
		work.Return(0)
		_, _ = wait(t, inv)
		assert.Equal(t, task.StatusStopping, statusSeen)
		late := inv.Snapshot().Late
		require.Len(t, late, 3)
		assert.Equal(t, task.EventCancel, late[0].Event)
		assert.Equal(t, task.EventAbandon, late[1].Event)
	})
	t.Run("done waits for finishing callbacks", func(t *testing.T) {
		release := make(chan struct{})
		entered := make(chan struct{})
		cb := task.Callbacks[int]{Completed: func(*task.Invocation[int], int) {
			close(entered)
			<-release
		}}
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background(), task.WithCallbacks(cb))
		<-entered
		assert.Equal(t, task.StatusCompleted, inv.Status())
		select {
		case <-inv.Done():
			t.Fatal("Done closed while the Completed callback runs")
		default:
		}
		close(release)
		_, err := wait(t, inv)
		assert.NoError(t, err)
	})
	t.Run("panicking callback kept in snapshot", func(t *testing.T) {
		rec := &record{}
		bad := task.Callbacks[int]{
			Started:   func(*task.Invocation[int]) { panic("callback bug") },
			Completed: func(*task.Invocation[int], int) { panic(errors.New("second bug")) },
		}
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background(), task.WithCallbacks(bad), task.WithCallbacks(rec.callbacks()))
		v, err := wait(t, inv)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		panics := inv.Snapshot().Panics
		require.Len(t, panics, 2)
		assert.Equal(t, "callback bug", panics[0].Value)
		assert.Contains(t, rec.list(), "Completed", "other sets still run")
	})
	t.Run("goexit in callback leaves run whole", func(t *testing.T) {
		rec := &record{}
		bad := task.Callbacks[int]{Started: func(*task.Invocation[int]) { runtime.Goexit() }}
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background(), task.WithCallbacks(bad), task.WithCallbacks(rec.callbacks()))
		_, err := wait(t, inv)
		// The Goexit ended the work's goroutine before the work ran.
		assert.ErrorIs(t, err, task.ErrFailed)
		assert.Contains(t, rec.list(), "Started")
		require.NotEmpty(t, inv.Snapshot().Panics)
	})
	t.Run("goexit skips nothing in its set", func(t *testing.T) {
		var changed []task.Status
		cb := task.Callbacks[int]{
			Completed: func(*task.Invocation[int], int) { runtime.Goexit() },
			Changed:   func(_ *task.Invocation[int], tr task.Transition) { changed = append(changed, tr.To) },
		}
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
			Start(context.Background(), task.WithCallbacks(cb))
		v, err := wait(t, inv)
		require.NoError(t, err)
		assert.Equal(t, 1, v)
		assert.Equal(t, []task.Status{task.StatusStarting, task.StatusStarted, task.StatusCompleted}, changed,
			"Changed after the Completed that exited")
		require.Len(t, inv.Snapshot().Panics, 1)
	})
	t.Run("callbacks never overlap", func(t *testing.T) {
		for range 200 {
			rec := &record{}
			inv := task.Task[int]{Work: tasktest.NewWork[int](t).Run, Timeout: time.Microsecond}.
				Start(context.Background(), task.WithCallbacks(rec.callbacks()))
			go inv.ReportProgress(1, 2)
			go inv.Cancel(nil)
			_, _ = wait(t, inv)
			require.False(t, rec.overlap.Load())
		}
	})
	t.Run("callbacks of two invocations cancel each other", func(t *testing.T) {
		var a, b *task.Invocation[int]
		ready := make(chan struct{})
		stopOther := func(other **task.Invocation[int]) task.Callbacks[int] {
			return task.Callbacks[int]{Stopped: func(*task.Invocation[int]) {
				<-ready
				(*other).Cancel(nil)
			}}
		}
		workA, workB := tasktest.NewWork[int](t), tasktest.NewWork[int](t)
		a = task.Task[int]{Work: workA.Run}.Start(context.Background(), task.WithCallbacks(stopOther(&b)))
		b = task.Task[int]{Work: workB.Run}.Start(context.Background(), task.WithCallbacks(stopOther(&a)))
		close(ready)
		workA.WaitBegun()
		workB.WaitBegun()
		a.Cancel(nil)
		_, errA := wait(t, a)
		_, errB := wait(t, b)
		assert.ErrorIs(t, errA, task.ErrCanceled)
		assert.ErrorIs(t, errB, task.ErrCanceled)
	})
}

func TestInvocation_ReportProgress(t *testing.T) {
	var rec tasktest.Recorder[int]
	work := tasktest.NewWork[int](t)
	inv := task.Task[int]{Work: work.Run}.
		Start(context.Background(), task.WithCallbacks(rec.Callbacks()))
	work.WaitBegun()
	assert.True(t, inv.ReportProgress(1, 3))
	assert.True(t, inv.ReportProgress(2, 3))
	assert.Equal(t, task.Progress{Done: 2, Total: 3}, inv.Snapshot().Progress)
	assert.Equal(t, task.StatusStarted, inv.Status(), "progress never changes status")
	work.Return(2)
	_, _ = wait(t, inv)

	assert.False(t, inv.ReportProgress(3, 3), "after the end")
	rec.WaitIgnored(t, task.EventProgress)
	rec.RequireProgress(t, task.Progress{Done: 1, Total: 3}, task.Progress{Done: 2, Total: 3})
	entries := rec.Entries()
	last := entries[len(entries)-1]
	assert.Equal(t, task.EventProgress, last.Ignored.Event, "the last entry")
	assert.Equal(t, task.StatusCompleted, last.Ignored.Status, "the last entry")
}

func TestInvocation_Options(t *testing.T) {
	type request struct{ URL string }
	inv := task.Task[int]{Work: func(_ context.Context, inv *task.Invocation[int]) (int, error) {
		return len(inv.State().(*request).URL), nil
	}}.Start(context.Background(), task.WithState(&request{URL: "abc"}), task.WithID("job-7"), task.Option{})
	v, err := wait(t, inv)
	require.NoError(t, err)
	assert.Equal(t, 3, v)
	assert.Equal(t, "job-7", inv.ID())
}

func TestSnapshot_JSON(t *testing.T) {
	errUser := errors.New("user request")
	work := tasktest.NewWork[int](t)
	inv := task.Task[int]{Work: work.Run}.Start(context.Background(), task.WithID("run-1"))
	work.WaitBegun()
	inv.ReportProgress(4, 10)
	inv.Cancel(errUser)
	_, _ = wait(t, inv)

	data, err := json.Marshal(inv.Snapshot())
	require.NoError(t, err)
	for _, s := range []string{`"id":"run-1"`, `"status":"STOPPED"`, `"exit_code":"canceled"`,
		`"error":"task: canceled: user request"`, `"progress":{"done":4,"total":10}`, `"to":"STOPPING"`} {
		assert.Contains(t, string(data), s)
	}

	var back task.Snapshot[int]
	require.NoError(t, json.Unmarshal(data, &back))
	snap := inv.Snapshot()
	assert.Equal(t, snap.Status, back.Status)
	assert.Equal(t, snap.ExitCode, back.ExitCode)
	assert.Equal(t, snap.Err.Error(), back.Err.Error())
	assert.ErrorIs(t, back.Err, task.ErrCanceled, "decoded error keeps its sentinel")
	assert.ErrorIs(t, back.Cause, task.ErrCanceled, "decoded cause keeps its sentinel")
	assert.Len(t, back.History, len(snap.History))
	require.Len(t, back.Late, 1)
	assert.Equal(t, snap.Late[0].Value, back.Late[0].Value)
	assert.True(t, strings.HasPrefix(back.Late[0].Err.Error(), "task: canceled"))
}

// checkHistory fails unless the transitions form a path that the
// documented lifecycle allows.
func checkHistory(t *testing.T, hist []task.Transition) {
	t.Helper()
	allowed := map[task.Status][]task.Status{
		0:                   {task.StatusStarting},
		task.StatusStarting: {task.StatusStarted, task.StatusStopping},
		task.StatusStarted:  {task.StatusCompleted, task.StatusFailed, task.StatusAbandoned, task.StatusStopping},
		task.StatusStopping: {task.StatusStopped, task.StatusUnknown},
		task.StatusFailed:   {task.StatusAbandoned},
		task.StatusStopped:  {task.StatusAbandoned},
		task.StatusUnknown:  {task.StatusAbandoned},
	}
	var from task.Status
	for _, tr := range hist {
		require.Equal(t, from, tr.From, "history %v", hist)
		require.Contains(t, allowed[from], tr.To, "history %v", hist)
		from = tr.To
	}
	require.True(t, from.Finished(), "history %v ends unfinished", hist)
}

func TestInvocation_Races(t *testing.T) {
	const runs = 2000
	errUser := errors.New("user")
	quick := func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		default:
			return 1, nil
		}
	}
	cases := []struct {
		name  string
		task  task.Task[int]
		race  func(inv *task.Invocation[int])
		check func(t *testing.T, inv *task.Invocation[int], begun int32)
	}{
		{"cancel versus completion", task.Task[int]{Work: quick},
			func(inv *task.Invocation[int]) { inv.Cancel(errUser) }, nil},
		{"timeout versus completion", task.Task[int]{Work: quick, Timeout: time.Nanosecond}, nil, nil},
		{"cancel versus cancel", task.Task[int]{Work: quick},
			func(inv *task.Invocation[int]) { inv.Cancel(errUser) },
			func(t *testing.T, inv *task.Invocation[int], begun int32) {
				require.LessOrEqual(t, begun, int32(1), "cancels that began cancellation")
			}},
		{"cancel versus abandon", task.Task[int]{Work: quick},
			func(inv *task.Invocation[int]) { inv.Abandon(errUser) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range runs {
				inv := c.task.Start(context.Background())
				var begun atomic.Int32
				var wg sync.WaitGroup
				for range 2 {
					wg.Go(func() {
						if inv.Cancel(errUser) {
							begun.Add(1)
						}
						if c.race != nil {
							c.race(inv)
						}
					})
				}
				_, _ = wait(t, inv)
				wg.Wait()
				checkHistory(t, inv.Snapshot().History)
				if c.check != nil {
					c.check(t, inv, begun.Load())
				}
			}
		})
	}
}

func TestInvocation_CancelFunctionOutlivesStop(t *testing.T) {
	t.Run("context kept after work returns", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cleaned := make(chan error, 1)
			inv := task.Task[int]{
				Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
					<-ctx.Done()
					return 0, ctx.Err() // returns at once: confirms the stop
				},
				Cancel: func(ctx context.Context, _ *task.Invocation[int]) error {
					time.Sleep(2 * time.Second) // a remote "drop the job" request
					cleaned <- ctx.Err()
					return nil
				},
				StopTimeout: 5 * time.Second,
			}.Start(context.Background())
			synctest.Wait()
			inv.Cancel(nil)

			_, err := inv.Wait(context.Background())
			require.ErrorIs(t, err, task.ErrCanceled)
			assert.NoError(t, <-cleaned, "the cleanup ran with a live context")
			synctest.Wait()
			late := inv.Snapshot().Late
			require.Len(t, late, 2)
			assert.Equal(t, task.EventFail, late[0].Event)
			assert.Equal(t, task.EventConfirm, late[1].Event)
		})
	})
	t.Run("context ends at stop timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cause := make(chan error, 1)
			inv := task.Task[int]{
				Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
					<-ctx.Done()
					return 0, ctx.Err()
				},
				Cancel: func(ctx context.Context, _ *task.Invocation[int]) error {
					<-ctx.Done()
					cause <- context.Cause(ctx)
					return ctx.Err()
				},
				StopTimeout: 5 * time.Second,
			}.Start(context.Background())
			synctest.Wait()
			inv.Cancel(nil)
			start := time.Now()

			_, err := inv.Wait(context.Background())
			require.ErrorIs(t, err, task.ErrCanceled)
			assert.ErrorIs(t, <-cause, task.ErrStopTimedOut)
			assert.Equal(t, 5*time.Second, time.Since(start))
			synctest.Wait()
			assert.Equal(t, task.StatusStopped, inv.Status(), "late answers change nothing")
			var events []task.Event
			for _, ig := range inv.Snapshot().Late {
				events = append(events, ig.Event)
			}
			assert.Equal(t, []task.Event{task.EventFail, task.EventStopTimeout, task.EventStopFail}, events)
		})
	})
}

func TestInvocation_WorkDone(t *testing.T) {
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	t.Run("closes when work returns", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			inv := task.Task[int]{
				Work: func(context.Context, *task.Invocation[int]) (int, error) {
					<-release // ignores its context
					return 1, nil
				},
				StopTimeout: time.Second,
			}.Start(context.Background())
			synctest.Wait()
			inv.Cancel(nil)
			_, err := inv.Wait(context.Background())
			require.ErrorIs(t, err, task.ErrStopTimedOut)

			assert.False(t, closed(inv.WorkDone()), "work still runs after UNKNOWN")
			close(release)
			synctest.Wait()
			assert.True(t, closed(inv.WorkDone()))
		})
	})
	t.Run("closed when work never runs", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.Background())
		cancel()
		inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.Start(parent)
		assert.True(t, closed(inv.WorkDone()))
	})
	t.Run("closed for invalid run", func(t *testing.T) {
		inv := task.Task[int]{}.Start(context.Background())
		assert.True(t, closed(inv.WorkDone()))
	})
	t.Run("closed after begin rejected", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			inv := task.Task[int]{Work: task.Func(func(context.Context) (int, error) { return 1, nil })}.
				Start(context.Background())
			inv.Cancel(nil) // before the work's goroutine runs
			synctest.Wait()
			assert.True(t, closed(inv.WorkDone()))
		})
	})
}
