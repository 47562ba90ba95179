package task_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tasklife/task"
)

// Wrap an existing function as work, start it and wait for its result.
func Example() {
	lookup := func(ctx context.Context) (string, error) { return "gopher", nil }

	inv := task.Task[string]{Work: task.Func(lookup)}.Start(context.Background())
	name, err := inv.Wait(context.Background())

	fmt.Println(name, err)
	fmt.Println(inv.Status(), inv.ExitCode())
	// Output:
	// gopher <nil>
	// COMPLETED completed
}

// A work function that returns an error fails the run; one that returns an
// error wrapped by Permanent abandons it, so that it is never retried.
func Example_fail() {
	errBadRecord := errors.New("record 7: missing id")
	tk := task.Task[int]{Work: task.Func(func(context.Context) (int, error) {
		return 0, task.Permanent(errBadRecord)
	})}

	inv := tk.Start(context.Background())
	_, err := inv.Wait(context.Background())

	fmt.Println(inv.Status(), inv.ExitCode())
	fmt.Println(err)
	fmt.Println(errors.Is(err, task.ErrAbandoned), errors.Is(err, errBadRecord))
	// Output:
	// ABANDONED failed
	// task: abandoned: record 7: missing id
	// true true
}

// Cancel a running run. The cancel function is a second piece of work that
// stops the first, here by closing a channel the work watches.
func Example_cancel() {
	started := make(chan struct{})
	stop := make(chan struct{})
	tk := task.Task[int]{
		Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			close(started)
			<-stop
			return 0, errors.New("interrupted")
		},
		Cancel: func(ctx context.Context, inv *task.Invocation[int]) error {
			fmt.Println("stopping", inv.State())
			close(stop)
			return nil
		},
		StopTimeout: time.Second,
	}
	inv := tk.Start(context.Background(), task.WithState("job 12"))
	<-started

	began := inv.Cancel(errors.New("user request"))
	_, err := inv.Wait(context.Background())

	fmt.Println("began cancellation:", began)
	fmt.Println(inv.Status(), inv.ExitCode())
	fmt.Println(err)
	// Output:
	// stopping job 12
	// began cancellation: true
	// STOPPED canceled
	// task: canceled: user request
}

// A timeout is one more way into cancellation: TimedOut fires, then
// Cancelling, and the run stops with the exit code timedOut.
func Example_timeout() {
	tk := task.Task[int]{
		Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			<-ctx.Done() // a slow call that honours its context
			return 0, ctx.Err()
		},
		Timeout: 10 * time.Millisecond,
	}
	cb := task.Callbacks[int]{
		TimedOut:   func(*task.Invocation[int]) { fmt.Println("timed out") },
		Cancelling: func(_ *task.Invocation[int], cause error) { fmt.Println("cancelling:", cause) },
		Stopped:    func(*task.Invocation[int]) { fmt.Println("stopped") },
	}

	inv := tk.Start(context.Background(), task.WithCallbacks(cb))
	_, err := inv.Wait(context.Background())

	fmt.Println(inv.Status(), inv.ExitCode(), errors.Is(err, task.ErrTimedOut))
	// Output:
	// timed out
	// cancelling: task: timed out after 10ms
	// stopped
	// STOPPED timedOut true
}

// A work that cannot really be stopped: the cancel function confirms at
// once, and the work's result, which arrives too late, reaches the Ignored
// callback instead of changing the run.
func Example_ignored() {
	started := make(chan struct{})
	release := make(chan struct{})
	late := make(chan struct{})
	tk := task.Task[string]{
		Work: func(context.Context, *task.Invocation[string]) (string, error) {
			close(started)
			<-release // ignores its context
			return "too late", nil
		},
		Cancel: func(context.Context, *task.Invocation[string]) error { return nil },
	}
	cb := task.Callbacks[string]{Ignored: func(_ *task.Invocation[string], e task.Ignored[string]) {
		fmt.Printf("ignored %s in %s: %q\n", e.Event, e.Status, e.Value)
		close(late)
	}}

	inv := tk.Start(context.Background(), task.WithCallbacks(cb))
	<-started
	inv.Cancel(nil)
	_, _ = inv.Wait(context.Background())
	fmt.Println(inv.Status())

	close(release)
	<-late
	fmt.Println(inv.Status())
	// Output:
	// STOPPED
	// ignored return in STOPPED: "too late"
	// STOPPED
}
