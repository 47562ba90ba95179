package bench

import (
	"context"
	"sync"
)

// The floor is what a caller writes by hand to run one piece of work in the
// background and wait for it: a goroutine, a context to cancel it and a
// channel closed when it returns. task cannot cost less than this, so its
// targets are ratios to it.

// trivialWork stands for a work function whose own cost is negligible, so
// that a benchmark measures only the machinery around it.
func trivialWork(ctx context.Context) (int, error) { return 1, nil }

// blockedWork stands for a work function that runs until it is cancelled.
// It sends on started once it runs, when started is not nil, so that a
// benchmark can cancel it only after it has begun.
func blockedWork(ctx context.Context, started chan<- struct{}) (int, error) {
	if started != nil {
		started <- struct{}{}
	}
	<-ctx.Done()
	return 0, context.Cause(ctx)
}

// floorRun runs work in its own goroutine with a cancellable context and
// waits for it. It is the floor without a status.
func floorRun(ctx context.Context, work func(context.Context) (int, error)) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		value int
		err   error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		value, err = work(ctx)
	}()
	<-done
	return value, err
}

// statusRun is the smallest hand-written invocation: the floor plus a
// status behind a mutex, set three times per successful run, with one
// callback after each change.
type statusRun struct {
	cancel   context.CancelFunc
	done     chan struct{}
	onChange func(r *statusRun, from, to status)

	// mu guards status, value and err. value and err are written before
	// done is closed and read only after it is.
	mu     sync.Mutex
	status status
	value  int
	err    error
}

// startStatusRun sets STARTING, starts work in a goroutine and returns at
// once. The goroutine sets STARTED before the work and COMPLETED or FAILED
// after it, and exits after closing done.
func startStatusRun(ctx context.Context, work func(context.Context) (int, error),
	onChange func(r *statusRun, from, to status)) *statusRun {
	ctx, cancel := context.WithCancel(ctx)
	r := &statusRun{cancel: cancel, done: make(chan struct{}), onChange: onChange}
	r.set(statusStarting)
	go func() {
		r.set(statusStarted)
		value, err := work(ctx)

		r.mu.Lock()
		r.value, r.err = value, err
		r.mu.Unlock()
		if err != nil {
			r.set(statusFailed)
		} else {
			r.set(statusCompleted)
		}
		cancel()
		close(r.done)
	}()
	return r
}

func (r *statusRun) set(to status) {
	r.mu.Lock()
	from := r.status
	r.status = to
	r.mu.Unlock()
	r.onChange(r, from, to)
}

func (r *statusRun) wait() (int, error) {
	<-r.done
	return r.value, r.err
}

// ignoreStatusChange is the callback of the benchmarks that have one. It
// does nothing, so that they measure the cost of calling it.
func ignoreStatusChange(*statusRun, status, status) {}
