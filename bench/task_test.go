package bench

import (
	"context"
	"errors"

	"github.com/tasklife/task"
)

// The tasks that the benchmarks start. Each is a plain value, built once
// and shared, as a caller would keep one.
var (
	trivialTask = task.Task[int]{Work: task.Func(trivialWork)}

	// timeoutTask arms a timer at every start that never fires.
	timeoutTask = task.Task[int]{Work: task.Func(trivialWork), Timeout: unusedTimeout}

	// invalidTask has no work, so that Start returns a run that is FAILED
	// from birth after one transition, with no goroutine started.
	invalidTask = task.Task[int]{}
)

// changedCallback is a set of callbacks with one callback, called after
// every transition, which does nothing.
var changedCallback = task.WithCallbacks(task.Callbacks[int]{
	Changed: func(*task.Invocation[int], task.Transition) {},
})

var errAbandonReason = errors.New("bench: abandoned")

// blockedTask returns a task whose work sends on started, when started is
// not nil, then blocks until its context ends.
func blockedTask(started chan<- struct{}) task.Task[int] {
	return task.Task[int]{
		Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			return blockedWork(ctx, started)
		},
	}
}

// confirmStop is a cancel function that confirms the stop at once, as one
// whose own call to stop the work succeeded would.
func confirmStop(context.Context, *task.Invocation[int]) error { return nil }
