package task

import (
	"context"
	"time"
)

// Cancel begins cancellation of a run that is StatusStarting or
// StatusStarted, with ExitCanceled, and returns at once. It reports
// whether this call began the cancellation. Every other call, such as a
// second Cancel or one after the run finished, returns false, changes
// nothing and reaches the Ignored callbacks.
//
// The work's context is cancelled first, with a cause matching
// [ErrCanceled] and cause (which may be nil). Then the cancel function
// runs in a new goroutine, bounded by StopTimeout; without one, the work's
// return confirms the stop. A run cancelled before its work began never
// runs the work and is [StatusStopped] when Cancel returns. Cancel does not
// wait for the stop: use [Invocation.Wait] or [Invocation.Done].
func (inv *Invocation[T]) Cancel(cause error) bool {
	var zero T
	return inv.fire(EventCancel, zero, cause)
}

// beginStopLocked applies the effects of entering StatusStopping: it
// records the cause, cancels the work's context, arms StopTimeout and
// starts the cancel function if there is work to stop.
func (inv *Invocation[T]) beginStopLocked(from Status, e Event, err error) {
	if e == EventTimeout {
		inv.cause = newRunError(ErrTimedOut, "after "+inv.task.Timeout.String(), nil, nil)
	} else {
		inv.cause = newRunError(ErrCanceled, "", err, nil)
	}
	// The work learns of the cancellation only now that it is recorded, so
	// its return cannot overtake the StatusStopping transition.
	inv.cancelWork(inv.cause)
	if from == StatusStarting {
		return // the table moves on to StatusStopped at once
	}
	if d := inv.task.StopTimeout; d > 0 {
		inv.rareLocked().stopTimer = time.AfterFunc(d, inv.onStopTimeout)
	}
	if inv.task.Cancel != nil {
		var ctx context.Context
		rare := inv.rareLocked()
		ctx, rare.endStop = context.WithCancelCause(detach(inv.parent))
		rare.cancelRunning = true
		go inv.runCancel(ctx)
	}
}

// endStopLocked disarms StopTimeout and ends the cancel function's context
// with cause, once the stop is settled and the cancel function has
// returned or run out of time.
func (inv *Invocation[T]) endStopLocked(cause error) {
	rare := inv.rare
	if rare == nil {
		return
	}
	if rare.stopTimer != nil {
		rare.stopTimer.Stop()
		rare.stopTimer = nil
	}
	if rare.endStop != nil {
		rare.endStop(cause)
	}
}

// runCancel runs the cancel function in its own goroutine.
func (inv *Invocation[T]) runCancel(ctx context.Context) {
	var (
		err      error
		returned bool
	)
	defer func() {
		if !returned {
			err = abnormalExit(recover(), "cancel function")
		}
		e := EventConfirm
		if err != nil {
			e = EventStopFail
		}
		var zero T
		inv.mu.Lock()
		inv.rare.cancelRunning = false
		inv.fireLocked(e, zero, err)
		inv.endStopLocked(nil)
		inv.unlockAndDeliver()
	}()
	err = inv.task.Cancel(ctx, inv)
	returned = true
}
