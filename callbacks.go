package task

import (
	"fmt"
	"runtime/debug"
	"time"
)

// Callbacks are optional functions that respond to the lifecycle events of
// one invocation, given with [WithCallbacks]. Each field fires once for
// each transition it is named for; a nil field is skipped.
//
// For one invocation, callbacks run one at a time, in the order of the
// transitions, and no lock of the library is held while they run. A
// callback runs on the goroutine that caused its event: the caller of
// Start, Cancel, Abandon or ReportProgress, the work's goroutine, or a
// timer's. If another goroutine is already running callbacks of the same
// invocation, that goroutine runs it next instead. A callback may call
// any method of its invocation except Wait: the callbacks of what it
// causes run after it returns. A callback that blocks delays only its own
// invocation. A panic in a callback is recovered and kept in
// [Snapshot].Panics, and the run and the other callbacks go on.
type Callbacks[T any] struct {
	// Started fires when the work function is about to be called.
	Started func(inv *Invocation[T])

	// Completed fires when the work has returned result with a nil error.
	Completed func(inv *Invocation[T], result T)

	// Failed fires when the work has returned an error, panicked or exited
	// without returning, and when Start rejects an invalid run. err is the
	// error [Invocation.Wait] returns.
	Failed func(inv *Invocation[T], err error)

	// Cancelling fires when cancellation begins, after TimedOut for a
	// timeout. cause is the cause of the work's context: it matches
	// ErrCanceled and the cause given to Cancel or the parent context's, or
	// ErrTimedOut.
	Cancelling func(inv *Invocation[T], cause error)

	// TimedOut fires when Timeout elapses before the run finishes, just
	// before Cancelling.
	TimedOut func(inv *Invocation[T])

	// Stopped fires when the stop is confirmed: the cancel function
	// returned nil, the work returned while StatusStopping, or the run was
	// cancelled before its work began.
	Stopped func(inv *Invocation[T])

	// StopFailed fires when the cancel function returns an error or
	// panics. err is the error Wait returns.
	StopFailed func(inv *Invocation[T], err error)

	// StopTimedOut fires when StopTimeout elapses while StatusStopping.
	StopTimedOut func(inv *Invocation[T])

	// Abandoned fires when the run becomes StatusAbandoned. err is the
	// error Wait returns: it matches ErrAbandoned and the reason.
	Abandoned func(inv *Invocation[T], err error)

	// Progress fires for each accepted [Invocation.ReportProgress].
	Progress func(inv *Invocation[T], done, total int64)

	// Ignored fires for each event the transition table rejects, such as a
	// Cancel after the run finished or a work that returns after the run
	// became StatusUnknown. It also fires for a work that returns while
	// StatusStopping, since that value or error is not the run's outcome.
	Ignored func(inv *Invocation[T], e Ignored[T])

	// Changed fires for every transition, the first one included, after
	// the callback named for that transition.
	Changed func(inv *Invocation[T], t Transition)
}

// Ignored is an event whose value or error is not the run's outcome, with
// the status it met and the value or error it carried. It is an event the
// transition table rejects, or a work's return during StatusStopping,
// which confirms the stop but does not count as the work's result. The
// error is the work's late error, the cancel function's late error, or
// the cause or reason of a rejected Cancel or Abandon.
type Ignored[T any] struct {
	Event  Event     `json:"event"`
	Status Status    `json:"status"`
	Value  T         `json:"value"`
	Err    error     `json:"-"`
	At     time.Time `json:"at"`
}

type noticeKind uint8

const (
	noticeTransition noticeKind = iota
	noticeIgnored
	noticeProgress
)

// notice is one pending callback delivery.
type notice[T any] struct {
	kind      noticeKind
	closeDone bool // the first finishing transition: close Done afterwards
	// tr is the transition, or for an ignored event its event, the status
	// that ignored it and its time.
	tr       Transition
	value    T     // the result for StatusCompleted, or an ignored event's value
	err      error // the argument of Failed, Cancelling, StopFailed, Abandoned, or an ignored event's error
	progress Progress
}

// deliver runs the queued callbacks unless another goroutine is already
// running them, in which case that goroutine runs them next.
func (inv *Invocation[T]) deliver() {
	inv.mu.Lock()
	inv.unlockAndDeliver()
}

// unlockAndDeliver unlocks mu, which must be held, releases what a
// finished run holds, and runs the queued callbacks as deliver does.
func (inv *Invocation[T]) unlockAndDeliver() {
	var r release
	if inv.releasePending {
		r = inv.takeReleaseLocked()
	}
	drain := !inv.delivering && inv.head < len(inv.queue)
	if drain {
		inv.delivering = true
	}
	inv.mu.Unlock()

	r.run()
	if drain {
		inv.drain(nil, 0, 0)
	}
}

// drain runs queued callbacks until the queue is empty. If cur is not nil,
// it is a notice already taken off the queue whose callbacks have yet to
// run from callback number call of set number set on.
func (inv *Invocation[T]) drain(cur *notice[T], set, call int) {
	var n notice[T]
	taken := cur != nil
	if taken {
		n = *cur
	}
	returned := false
	running := 0 // the number, within its set, of the callback running
	defer func() {
		if !returned {
			inv.resumeAfterGoexit(&n, set, running)
		}
	}()
	for {
		if !taken {
			inv.mu.Lock()
			if inv.head == len(inv.queue) {
				inv.queue, inv.head = inv.queue[:0], 0
				inv.delivering = false
				inv.mu.Unlock()
				returned = true
				return
			}
			n = inv.queue[inv.head]
			inv.queue[inv.head] = notice[T]{} // drop references to values and errors
			inv.head++
			inv.mu.Unlock()
		}
		for ; set < len(inv.callbacks); set++ {
			inv.notify(inv.callbacks[set], &n, call, &running)
			call = 0
		}
		if n.closeDone {
			close(inv.done)
		}
		taken, set = false, 0
	}
}

// resumeAfterGoexit runs the callbacks after callback number running of set
// number set for n, and the rest of the queue, once that callback called
// runtime.Goexit, which cannot be stopped: they run on the way out, since
// no other goroutine will.
//
//go:noinline
func (inv *Invocation[T]) resumeAfterGoexit(n *notice[T], set, running int) {
	inv.keepPanic(fmt.Errorf("callback %w", errGoexit))
	inv.drain(n, set, running+1)
}

// keepPanic keeps the panic r of a callback in the snapshot. A nil r is a
// callback that called runtime.Goexit, which drain records as it resumes.
//
//go:noinline
func (inv *Invocation[T]) keepPanic(r any) {
	if r == nil {
		return
	}
	p := &PanicError{Value: r, Stack: debug.Stack()}
	inv.mu.Lock()
	inv.rareLocked().panics = append(inv.rareLocked().panics, p)
	inv.mu.Unlock()
}

// hook names one callback field of Callbacks.
type hook uint8

const (
	hookStarted hook = iota + 1
	hookCompleted
	hookFailed
	hookCancelling
	hookTimedOut
	hookStopped
	hookStopFailed
	hookStopTimedOut
	hookAbandoned
	hookProgress
	hookIgnored
	hookChanged
)

// notify runs the callbacks of cb that n names, from callback number from
// on, and keeps the number of the one running in *running.
func (inv *Invocation[T]) notify(cb *Callbacks[T], n *notice[T], from int, running *int) {
	var hooks [3]hook
	k := 0
	switch n.kind {
	case noticeIgnored:
		if cb.Ignored != nil {
			hooks[k], k = hookIgnored, k+1
		}
	case noticeProgress:
		if cb.Progress != nil {
			hooks[k], k = hookProgress, k+1
		}
	case noticeTransition:
		var named hook
		switch n.tr.To {
		case StatusStarted:
			if cb.Started != nil {
				named = hookStarted
			}
		case StatusCompleted:
			if cb.Completed != nil {
				named = hookCompleted
			}
		case StatusFailed:
			if cb.Failed != nil {
				named = hookFailed
			}
		case StatusStopping:
			if n.tr.Event == EventTimeout && cb.TimedOut != nil {
				hooks[k], k = hookTimedOut, k+1
			}
			if cb.Cancelling != nil {
				named = hookCancelling
			}
		case StatusStopped:
			if cb.Stopped != nil {
				named = hookStopped
			}
		case StatusUnknown:
			if n.tr.ExitCode == ExitCancelTimedOut && cb.StopTimedOut != nil {
				named = hookStopTimedOut
			} else if n.tr.ExitCode != ExitCancelTimedOut && cb.StopFailed != nil {
				named = hookStopFailed
			}
		case StatusAbandoned:
			if cb.Abandoned != nil {
				named = hookAbandoned
			}
		}
		if named != 0 {
			hooks[k], k = named, k+1
		}
		if cb.Changed != nil {
			hooks[k], k = hookChanged, k+1
		}
	}
	for i := from; i < k; i++ {
		*running = i
		inv.invoke(cb, n, hooks[i])
	}
}

// invoke runs one callback and keeps a panic from it in the snapshot, so
// that a failing callback never leaves the run stuck. It takes the hook's
// name, not a closure, to keep the frames of the delivering goroutine
// small: growing its stack cost more than the callback.
func (inv *Invocation[T]) invoke(cb *Callbacks[T], n *notice[T], h hook) {
	returned := false
	defer func() {
		if !returned {
			inv.keepPanic(recover()) // recover is not free, even with no panic
		}
	}()
	switch h {
	case hookStarted:
		cb.Started(inv)
	case hookCompleted, hookIgnored:
		inv.invokeWithValue(cb, n, h)
	case hookFailed:
		cb.Failed(inv, n.err)
	case hookCancelling:
		cb.Cancelling(inv, n.err)
	case hookTimedOut:
		cb.TimedOut(inv)
	case hookStopped:
		cb.Stopped(inv)
	case hookStopFailed:
		cb.StopFailed(inv, n.err)
	case hookStopTimedOut:
		cb.StopTimedOut(inv)
	case hookAbandoned:
		cb.Abandoned(inv, n.err)
	case hookProgress:
		cb.Progress(inv, n.progress.Done, n.progress.Total)
	case hookChanged:
		cb.Changed(inv, n.tr)
	}
	returned = true
}

// invokeWithValue runs the callbacks that take a value of type T, which
// may be large, so that only they pay for its copy on the stack.
//
//go:noinline
func (inv *Invocation[T]) invokeWithValue(cb *Callbacks[T], n *notice[T], h hook) {
	if h == hookCompleted {
		cb.Completed(inv, n.value)
		return
	}
	cb.Ignored(inv, Ignored[T]{Event: n.tr.Event, Status: n.tr.To, Value: n.value, Err: n.err, At: n.tr.At})
}
