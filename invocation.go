package task

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Invocation is one run of a [Task]: the only stateful object of the run.
// It holds the status, the exit code, the result or error, the custom
// state and the callbacks. [Task.Start] creates it; the zero value is not
// usable.
//
// All methods are safe to call from several goroutines and from the run's
// own callbacks.
type Invocation[T any] struct {
	// Set once in Start, before the invocation is shared.
	task       Task[T]
	state      any
	callbacks  []*Callbacks[T]
	parent     context.Context
	ctx        context.Context // the work's context
	cancelWork context.CancelCauseFunc
	done       chan struct{}
	startedAt  time.Time
	idBits     [2]uint64

	// mu guards the fields below. It is never held while a callback, the
	// work or the cancel function runs.
	mu          sync.Mutex
	id          string
	status      Status
	code        ExitCode
	result      T
	err         error // the run's error once finished
	cause       error // the cause of cancellation, once StatusStopping
	history     [maxHistory]step
	historyLen  uint8
	finished    bool
	finishedAt  time.Duration // since startedAt
	progress    Progress
	workRunning bool
	workEnded   bool          // the work has returned, or will never be called
	workDone    chan struct{} // made by WorkDone, closed once workEnded
	timer       *time.Timer   // Timeout, until the run finishes
	stopParent  func() bool   // unregisters from the parent context
	// releasePending is set when the run finishes, until
	// takeReleaseLocked is called.
	releasePending bool
	// rare holds what only cancellation, late events and panics need, so
	// that a run without them stays small.
	rare *rareState[T]

	queue      []notice[T] // callbacks not yet run, in order from head
	head       int
	delivering bool // a goroutine is running callbacks
}

// rareState is the part of an invocation that most runs never use. It is
// guarded by the invocation's mu.
type rareState[T any] struct {
	late        []Ignored[T]
	lateOmitted int
	panics      []*PanicError

	stopTimer     *time.Timer // StopTimeout, until the cancel function returns
	endStop       context.CancelCauseFunc
	cancelRunning bool
}

func (inv *Invocation[T]) rareLocked() *rareState[T] {
	if inv.rare == nil {
		inv.rare = new(rareState[T])
	}
	return inv.rare
}

// Progress is the work's last report of its progress, in units of its
// choosing. Total is zero when the work does not know it.
type Progress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// maxLate is how many ignored events a snapshot keeps. Callbacks see them
// all.
const maxLate = 16

// ID returns the invocation's ID: the one given with [WithID], or 32
// random hexadecimal digits.
func (inv *Invocation[T]) ID() string {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.idLocked()
}

func (inv *Invocation[T]) idLocked() string {
	if inv.id == "" {
		inv.id = fmt.Sprintf("%016x%016x", inv.idBits[0], inv.idBits[1])
	}
	return inv.id
}

// Status returns the current status.
func (inv *Invocation[T]) Status() Status {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.status
}

// ExitCode returns the current exit code: [ExitUnknown] until the run
// ends, then why it ended.
func (inv *Invocation[T]) ExitCode() ExitCode {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.code
}

// State returns the value given with [WithState], or nil.
func (inv *Invocation[T]) State() any {
	return inv.state
}

// Done returns a channel that is closed when the run has finished and the
// callbacks of its finishing transition have returned. A later
// [Invocation.Abandon] does not reopen it.
func (inv *Invocation[T]) Done() <-chan struct{} {
	return inv.done
}

// Result returns the result and error of a finished run, as
// [Invocation.Wait] does, without waiting. Before the run finishes it
// returns the zero T and a nil error.
func (inv *Invocation[T]) Result() (T, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if !inv.status.Finished() {
		var zero T
		return zero, nil
	}
	return inv.result, inv.err
}

// Wait blocks until [Invocation.Done] is closed or ctx ends. It returns
// the result of a [StatusCompleted] run. Otherwise the error matches, with
// [errors.Is], the sentinel for the way the run ended ([ErrFailed],
// [ErrCanceled], [ErrTimedOut], [ErrStopFailed], [ErrStopTimedOut] or
// [ErrAbandoned]) and the error or cause behind it. A panic is a
// [*PanicError].
//
// If ctx ends first, Wait returns [context.Cause] of ctx; the outcome of a
// finished run wins over an ended ctx. A callback must not Wait for its own
// invocation, since Done closes only after the callback returns. A nil
// ctx is an error matching [ErrInvalid].
func (inv *Invocation[T]) Wait(ctx context.Context) (T, error) {
	var zero T
	if ctx == nil {
		return zero, invalidf("Wait context: nil; pass context.Background() to wait without limit")
	}
	if ctx.Done() == nil {
		<-inv.done
		return inv.Result()
	}
	select {
	case <-inv.done:
		return inv.Result()
	default:
	}
	select {
	case <-inv.done:
		return inv.Result()
	case <-ctx.Done():
		select {
		case <-inv.done:
			return inv.Result()
		default:
			return zero, context.Cause(ctx)
		}
	}
}

// ReportProgress records the progress of the work and passes it to the
// Progress callbacks. It never changes the status. After the run has
// finished it reaches the Ignored callbacks instead and returns false.
func (inv *Invocation[T]) ReportProgress(done, total int64) bool {
	inv.mu.Lock()
	if inv.status.Finished() {
		var zero T
		inv.ignoreLocked(EventProgress, zero, nil)
		inv.unlockAndDeliver()
		return false
	}
	inv.progress = Progress{Done: done, Total: total}
	if len(inv.callbacks) > 0 {
		inv.queue = append(inv.queue, notice[T]{kind: noticeProgress, progress: inv.progress})
	}
	inv.unlockAndDeliver()
	return true
}

// Abandon gives a finished, unsuccessful run its final verdict: it moves a
// StatusFailed, StatusStopped or StatusUnknown run to [StatusAbandoned],
// keeping its exit code, so that it is never retried. The run's error then
// matches [ErrAbandoned], reason and the earlier error. Abandon returns
// true if it made that change. A run that is still going, completed or
// already abandoned is left alone and the call reaches the Ignored
// callbacks; cancel a running run first.
func (inv *Invocation[T]) Abandon(reason error) bool {
	var zero T
	return inv.fire(EventAbandon, zero, reason)
}

// run runs the work in the work's goroutine.
func (inv *Invocation[T]) run() {
	var zero T
	inv.mu.Lock()
	if !inv.fireLocked(EventBegin, zero, nil) {
		inv.endWorkLocked()
		inv.unlockAndDeliver()
		return
	}
	inv.workRunning = true
	inv.mu.Unlock()

	// The callbacks of the work's return run from here, not from a
	// deferred call, so that the frames below them stay few and small: a
	// callback that overflows this goroutine's first stack costs a copy of
	// the whole stack.
	value, err, ended := inv.callWork()
	if !ended {
		inv.workReturned(value, err)
	}
}

// callWork runs the Started callbacks and the work function, and turns a
// panic in either into an error. If either calls runtime.Goexit, which
// cannot be stopped, callWork ends the run on the way out and never
// returns. It returns ended true only after a panic(nil) that recover
// reports as nil, as with GODEBUG=panicnil=1: that run has ended too.
func (inv *Invocation[T]) callWork() (value T, err error, ended bool) {
	called, returned := false, false
	defer func() {
		if returned {
			return
		}
		origin := "a Started callback"
		if called {
			origin = "work function"
		}
		r := recover()
		err = abnormalExit(r, origin)
		if r == nil {
			inv.workReturned(value, err)
			ended = true
		}
	}()
	inv.deliver() // the Started callbacks, which may end this goroutine
	called = true
	value, err = inv.task.Work(inv.ctx, inv)
	returned = true
	return value, err, false
}

func (inv *Invocation[T]) workReturned(value T, err error) {
	e := EventReturn
	if err != nil {
		e = EventFail
		if isPermanent(err) {
			e = EventPermanent
		}
	}
	inv.mu.Lock()
	inv.workRunning = false
	inv.endWorkLocked()
	inv.fireLocked(e, value, err)
	inv.unlockAndDeliver()
}

// endWorkLocked records that the work has returned or will never be
// called.
func (inv *Invocation[T]) endWorkLocked() {
	inv.workEnded = true
	if inv.workDone != nil {
		close(inv.workDone)
	}
}

// WorkDone returns a channel that is closed once the work function has
// returned, or once it is certain never to be called. It closes after
// [Invocation.Done] when the run finished while the work still ran: after
// StatusUnknown, or after a cancel function that confirmed the stop early.
// A caller that limits how many works run at once should release a slot
// here, not at Done.
func (inv *Invocation[T]) WorkDone() <-chan struct{} {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.workDone == nil {
		inv.workDone = make(chan struct{})
		if inv.workEnded {
			close(inv.workDone)
		}
	}
	return inv.workDone
}

// fire applies event e as fireLocked does, then releases what a finished
// run holds and runs the queued callbacks. mu must not be held.
func (inv *Invocation[T]) fire(e Event, value T, err error) bool {
	inv.mu.Lock()
	ok := inv.fireLocked(e, value, err)
	inv.unlockAndDeliver()
	return ok
}

// fireLocked applies event e, with its value or error, to the run. It
// reports whether the transition table accepted e; a rejected event
// reaches the Ignored callbacks.
func (inv *Invocation[T]) fireLocked(e Event, value T, err error) bool {
	r, ok := next(inv.status, e)
	if !ok {
		inv.ignoreLocked(e, value, err)
		return false
	}
	if r.late {
		inv.ignoreLocked(e, value, err)
	}
	inv.moveLocked(r.to, e, r.code, r.setCode, value, err)
	if r.then != 0 {
		inv.moveLocked(r.then, e, 0, false, value, err)
	}
	return true
}

// moveLocked changes the status to to, records the transition, applies its
// effects and queues its callbacks.
func (inv *Invocation[T]) moveLocked(to Status, e Event, code ExitCode, setCode bool, value T, err error) {
	from := inv.status
	now := time.Since(inv.startedAt)
	inv.status = to
	if setCode {
		inv.code = code
	}
	st := step{from: from, to: to, event: e, code: inv.code, at: now}
	inv.history[inv.historyLen] = st
	inv.historyLen++

	switch to {
	case StatusStarting, StatusStarted:
	case StatusCompleted:
		inv.result = value
	default:
		inv.enterLocked(from, to, e, err)
	}

	finishes := to.Finished() && !inv.finished
	if finishes {
		inv.finished, inv.finishedAt = true, now
		inv.releasePending = true
	}
	if len(inv.callbacks) == 0 {
		return // takeReleaseLocked closes Done
	}

	inv.queueTransitionLocked(st, finishes, value)
}

// enterLocked sets the error of a run that enters status to, and applies
// the effects of entering or leaving StatusStopping. It is kept out of
// moveLocked so that the common transitions run in a small stack frame:
// the work's goroutine starts with a small stack, and growing it cost more
// than a whole run.
//
//go:noinline
func (inv *Invocation[T]) enterLocked(from, to Status, e Event, err error) {
	switch to {
	case StatusFailed:
		if e == EventInvalid {
			inv.err = &invalidError{err: err}
		} else {
			inv.err = newRunError(ErrFailed, "", err, nil)
		}
	case StatusStopping:
		inv.beginStopLocked(from, e, err)
	case StatusStopped:
		inv.err = inv.cause
		// A cancel function that is still running keeps its context until
		// it returns or StopTimeout elapses: it may be cleaning up, say by
		// telling a remote service to drop the job.
		if inv.rare == nil || !inv.rare.cancelRunning {
			inv.endStopLocked(nil)
		}
	case StatusUnknown:
		if e == EventStopTimeout {
			inv.err = newRunError(ErrStopTimedOut, "after "+inv.task.StopTimeout.String(),
				nil, inv.cause)
			// The run is UNKNOWN before the cancel function's context ends,
			// so a cancel function that returns ctx.Err() returns too late.
			inv.endStopLocked(inv.err)
		} else {
			inv.err = newRunError(ErrStopFailed, "", err, inv.cause)
			inv.endStopLocked(nil)
		}
	case StatusAbandoned:
		if e == EventPermanent {
			inv.err = newRunError(ErrAbandoned, "", err, nil)
		} else {
			inv.err = newRunError(ErrAbandoned, "", err, inv.err)
		}
	}

}

// queueTransitionLocked queues the callbacks of the transition st.
//
//go:noinline
func (inv *Invocation[T]) queueTransitionLocked(st step, finishes bool, value T) {
	n := notice[T]{kind: noticeTransition, tr: inv.transition(st), closeDone: finishes}
	switch st.to {
	case StatusCompleted:
		n.value = value
	case StatusStopping:
		n.err = inv.cause
	case StatusFailed, StatusStopped, StatusUnknown, StatusAbandoned:
		n.err = inv.err
	}
	inv.queue = append(inv.queue, n)
}

// ignoreLocked records event e, rejected in the current status, and
// queues the Ignored callbacks.
func (inv *Invocation[T]) ignoreLocked(e Event, value T, err error) {
	ig := Ignored[T]{Event: e, Status: inv.status, Value: value, Err: err, At: inv.now()}
	rare := inv.rareLocked()
	if len(rare.late) < maxLate {
		rare.late = append(rare.late, ig)
	} else {
		rare.lateOmitted++
	}
	if len(inv.callbacks) > 0 {
		inv.queue = append(inv.queue, notice[T]{kind: noticeIgnored,
			tr: Transition{To: ig.Status, Event: e, At: ig.At}, value: value, err: err})
	}
}

// now returns the current time. It reads only the monotonic clock, which
// costs half of what time.Now does, and keeps the wall clock of Start.
func (inv *Invocation[T]) now() time.Time {
	return inv.startedAt.Add(time.Since(inv.startedAt))
}

// transition returns the history entry st as a Transition.
func (inv *Invocation[T]) transition(st step) Transition {
	return Transition{From: st.from, To: st.to, Event: st.event, ExitCode: st.code,
		At: inv.startedAt.Add(st.at)}
}

// release is what a finished run still holds: its Timeout timer, its
// registration with the parent context and the work's context. done is
// the Done channel of a run with no callbacks, closed once the rest is
// released, so that no timer or parent can reach Ignored after Done.
type release struct {
	timer      *time.Timer
	stopParent func() bool
	cancelWork context.CancelCauseFunc
	done       chan struct{}
}

// takeReleaseLocked returns what the finished run holds and clears it, so
// that it is released once, outside the critical section. The work's
// context of a run that went through StatusStopping was cancelled then,
// with the cause, and is not touched again.
func (inv *Invocation[T]) takeReleaseLocked() release {
	r := release{timer: inv.timer, stopParent: inv.stopParent}
	if inv.cause == nil {
		r.cancelWork = inv.cancelWork
	}
	if len(inv.callbacks) == 0 {
		r.done = inv.done
	}
	inv.timer, inv.stopParent, inv.releasePending = nil, nil, false
	return r
}

func (r release) run() {
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.stopParent != nil {
		r.stopParent()
	}
	if r.cancelWork != nil {
		r.cancelWork(nil)
	}
	if r.done != nil {
		close(r.done)
	}
}
