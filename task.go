package task

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// WorkFunc is the business work of a task. Everything about one run
// reaches it through its arguments: ctx is cancelled when cancellation
// begins, with a cause that [context.Cause] returns, and inv carries the
// run's custom state and progress. A nil error completes the run.
type WorkFunc[T any] func(ctx context.Context, inv *Invocation[T]) (T, error)

// CancelFunc is a second piece of work whose only job is to stop the work
// of inv, for example by killing a process or calling a remote cancel
// endpoint. It runs in its own goroutine once the work's context has been
// cancelled. Returning nil confirms the stop. Returning an error, or
// panicking, ends the run [StatusUnknown] with [ExitCancelFailed]. Its ctx
// ends only when StopTimeout elapses, with a cause matching
// [ErrStopTimedOut], so that it can finish its own cleanup, such as asking
// a remote service to drop the job, even after the work has returned. With
// a zero StopTimeout it never ends, so a cancel function must not wait on
// ctx alone.
//
// The work's return also confirms the stop, and whichever of the two comes
// first wins. Where only the work's return proves the stop, as with a
// process that must be reaped, the cancel function can signal the work and
// then wait for [Invocation.Done] or ctx, so that every run has the same
// history.
type CancelFunc[T any] func(ctx context.Context, inv *Invocation[T]) error

// Task pairs a work function with the function that cancels it and their
// time limits. It is a plain value: the zero value of every field but Work
// is usable, a Task may be copied and shared, and every [Task.Start] makes
// a new [Invocation].
type Task[T any] struct {
	// Work does the work. It must not be nil.
	Work WorkFunc[T]

	// Cancel stops the work. If nil, cancelling the work's context is the
	// whole attempt, and the work's return confirms the stop.
	Cancel CancelFunc[T]

	// Timeout bounds the run, counted from Start. When it elapses before
	// the run finishes, cancellation begins with ExitTimedOut. Zero means
	// no limit.
	Timeout time.Duration

	// StopTimeout bounds cancellation, counted from the moment the status
	// becomes StatusStopping. When it elapses first, the run ends
	// StatusUnknown with ExitCancelTimedOut. Zero means no limit, so a work
	// that ignores its context keeps the run StatusStopping for as long as
	// it runs. Set it for every work that is not known to stop.
	StopTimeout time.Duration
}

// Func adapts an existing function to a [WorkFunc] that ignores its
// invocation. Func(nil) returns nil, which [Task.Validate] rejects.
func Func[T any](fn func(context.Context) (T, error)) WorkFunc[T] {
	if fn == nil {
		return nil
	}
	return func(ctx context.Context, _ *Invocation[T]) (T, error) { return fn(ctx) }
}

// Validate returns an error matching [ErrInvalid] that names the first
// invalid field and its value, or nil if t can start.
func (t Task[T]) Validate() error {
	if t.Work == nil {
		return invalidf("Work: nil; set it to the function that does the work")
	}
	if t.Timeout < 0 {
		return invalidf("Timeout %v: must not be negative; 0 means no limit", t.Timeout)
	}
	if t.StopTimeout < 0 {
		return invalidf("StopTimeout %v: must not be negative; 0 means no limit", t.StopTimeout)
	}
	return nil
}

// Start starts a run of t and returns its invocation at once. It records
// [StatusStarting], runs that transition's callbacks on the calling
// goroutine, arms the Timeout, and starts the work in a new goroutine,
// which exits when the work function returns.
//
// The end of ctx cancels the run with ExitCanceled, and ctx's values reach
// the work and cancel functions, but the work's context is not a child of
// ctx: it is cancelled only once the run is StatusStopping, so a work that
// returns because of the cancellation always confirms a stop and never
// fails the run.
//
// Start never panics on bad input. If t is invalid, ctx is nil or an option
// does not fit T, the run is [StatusFailed] from birth with [ExitFailed]
// and an error matching [ErrInvalid]. Its history holds that one
// transition, the Failed callback has fired once, and no goroutine was
// started.
func (t Task[T]) Start(ctx context.Context, opts ...Option) *Invocation[T] {
	inv := &Invocation[T]{
		task:      t,
		done:      make(chan struct{}),
		startedAt: time.Now(),
		idBits:    [2]uint64{rand.Uint64(), rand.Uint64()},
	}
	err := inv.configure(opts)
	if err == nil {
		err = t.Validate()
	}
	if err == nil && ctx == nil {
		err = invalidf("parent context: nil; pass context.Background() for none")
	}
	if err != nil {
		var zero T
		inv.mu.Lock()
		inv.endWorkLocked()
		inv.fireLocked(EventInvalid, zero, err)
		inv.unlockAndDeliver()
		return inv
	}

	inv.parent = ctx
	inv.ctx, inv.cancelWork = context.WithCancelCause(detach(ctx))

	inv.mu.Lock()
	var zero T
	inv.fireLocked(EventStart, zero, nil)
	inv.armLocked()
	inv.unlockAndDeliver()

	// A STARTING callback, the parent or the timer may have ended the run
	// already, and then there is no work to run.
	inv.mu.Lock()
	starting := inv.status == StatusStarting
	if !starting {
		inv.endWorkLocked()
	}
	inv.mu.Unlock()
	if starting {
		go inv.run()
	}
	return inv
}

// detach returns a context with the values of ctx and none of its
// cancellation, since the run itself decides when its work sees an end.
//
// NOTE: the work's context therefore reports no deadline, neither the
// parent's nor Start plus Timeout, so code that propagates deadlines (gRPC
// clients, net.Dialer) does not see one. Reporting it would let a socket
// deadline fail the work just before the run's timer stops it.
func detach(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// Option configures one run at [Task.Start]. The zero Option changes
// nothing. An Option is a plain value: build it once and reuse it, and
// Start allocates nothing for it.
type Option struct {
	kind  optionKind
	id    string
	value any // the state, or a []*Callbacks[T] of one element
}

type optionKind uint8

const (
	optionState optionKind = iota + 1
	optionID
	optionCallbacks
)

// WithState puts v on the invocation, where [Invocation.State] returns it to
// the work, the cancel function and the callbacks. The library never reads
// or changes v.
func WithState(v any) Option {
	return Option{kind: optionState, value: v}
}

// WithID sets the ID of the invocation, such as a job or request ID. An
// empty id keeps the default: 32 random hexadecimal digits.
func WithID(id string) Option {
	return Option{kind: optionID, id: id}
}

// WithCallbacks adds a copy of cb to the invocation. Sets given in several
// options run in the order given. The T of cb must be the T of the task,
// or the run is rejected with [ErrInvalid].
func WithCallbacks[T any](cb Callbacks[T]) Option {
	return Option{kind: optionCallbacks, value: []*Callbacks[T]{&cb}}
}

// configure applies opts to inv and returns an error for an option that
// does not fit T.
func (inv *Invocation[T]) configure(opts []Option) error {
	var err error
	for _, o := range opts {
		switch o.kind {
		case optionState:
			inv.state = o.value
		case optionID:
			inv.id = o.id
		case optionCallbacks:
			cb, ok := o.value.([]*Callbacks[T])
			if !ok {
				// The sets that fit still see the rejection of the run.
				if err == nil {
					err = invalidf("option WithCallbacks(%s): the task has type Task[%s]",
						strings.TrimPrefix(fmt.Sprintf("%T", o.value), "[]*"), typeName[T]())
				}
				continue
			}
			if inv.callbacks == nil {
				inv.callbacks = cb // shared with the option, and never written
			} else {
				inv.callbacks = append(inv.callbacks[:len(inv.callbacks):len(inv.callbacks)], cb...)
			}
		}
	}
	return err
}

func typeName[T any]() string {
	return fmt.Sprintf("%T", (*T)(nil))[1:]
}
