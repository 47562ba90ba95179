package task

import (
	"context"
	"time"
)

// armLocked arms the Timeout and registers the run with its parent
// context. A parent that has already ended cancels the run at once.
func (inv *Invocation[T]) armLocked() {
	if d := inv.task.Timeout; d > 0 {
		inv.timer = time.AfterFunc(d, inv.onTimeout)
	}
	if inv.parent.Done() == nil {
		return
	}
	if inv.parent.Err() != nil {
		var zero T
		inv.fireLocked(EventCancel, zero, context.Cause(inv.parent))
		return
	}
	inv.stopParent = context.AfterFunc(inv.parent, inv.onParentDone)
}

// onTimeout runs in the timer's goroutine when Timeout elapses. Once the
// run is StatusStopping the event is rejected and reaches Ignored; once it
// has finished the timer is stopped, unless it was already firing.
func (inv *Invocation[T]) onTimeout() {
	inv.fireEvent(EventTimeout, nil)
}

// onParentDone runs in its own goroutine when the parent context ends.
func (inv *Invocation[T]) onParentDone() {
	inv.fireEvent(EventCancel, context.Cause(inv.parent))
}

// onStopTimeout runs in the timer's goroutine when StopTimeout elapses.
//
// If the work's return confirmed the stop first, the event is rejected, but
// a cancel function still running has run out of time all the same.
func (inv *Invocation[T]) onStopTimeout() {
	var zero T
	inv.mu.Lock()
	if !inv.fireLocked(EventStopTimeout, zero, nil) {
		inv.endStopLocked(newRunError(ErrStopTimedOut, "after "+inv.task.StopTimeout.String(), nil, nil))
	}
	inv.unlockAndDeliver()
}

func (inv *Invocation[T]) fireEvent(e Event, err error) {
	var zero T
	inv.fire(e, zero, err)
}
