package task

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Sentinel errors. The error of a finished run matches, with [errors.Is],
// the one for the way it ended, and also the error or cause it wraps.
var (
	// ErrInvalid matches the error of [Task.Validate], and the error of a
	// run that [Task.Start] rejected.
	ErrInvalid = errors.New("task: invalid")

	// ErrFailed matches the error of a StatusFailed run: the work returned
	// an error, panicked or exited without returning.
	ErrFailed = errors.New("task: failed")

	// ErrCanceled matches the error of a run stopped by
	// [Invocation.Cancel] or by the end of its parent context.
	ErrCanceled = errors.New("task: canceled")

	// ErrTimedOut matches the error of a run stopped because its Timeout
	// elapsed.
	ErrTimedOut = errors.New("task: timed out")

	// ErrStopFailed matches the error of a StatusUnknown run whose cancel
	// function returned an error or panicked.
	ErrStopFailed = errors.New("task: stop failed")

	// ErrStopTimedOut matches the error of a StatusUnknown run whose
	// StopTimeout elapsed.
	ErrStopTimedOut = errors.New("task: stop timed out")

	// ErrAbandoned matches the error of a StatusAbandoned run.
	ErrAbandoned = errors.New("task: abandoned")
)

// errGoexit is the error of a work or cancel function that ended its
// goroutine without returning.
var errGoexit = errors.New("exited without returning, as runtime.Goexit and t.FailNow do")

// abnormalExit returns the error of a function, named by what, that
// panicked with r or, if r is nil, called runtime.Goexit, which goes on
// ending the goroutine once the deferred call returns. It is kept out of
// the deferred calls so that their frames, which every run pays for, stay
// small.
//
//go:noinline
func abnormalExit(r any, what string) error {
	if r != nil {
		return &PanicError{Value: r, Stack: debug.Stack()}
	}
	return fmt.Errorf("%s %w", what, errGoexit)
}

// PanicError is a panic recovered from a work function, a cancel function
// or a callback.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the panicking goroutine's stack, as debug.Stack formats it
}

// Error returns "panic: " and the value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v", e.Value)
}

// Unwrap returns the panic value if it is an error, so that [errors.Is]
// reaches it, and nil otherwise.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// Permanent marks err as a failure that no retry can fix, such as bad
// input. A work function that returns it, or an error wrapping it, ends the
// run [StatusAbandoned] instead of [StatusFailed]. Permanent(nil) returns
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// isPermanent reports whether err's chain holds a Permanent error. It walks
// the chain itself because errors.As, which goes through reflection, cost
// a fifth of a cancelled run's time.
func isPermanent(err error) bool {
	for err != nil {
		switch e := err.(type) {
		case *permanentError:
			return true
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				if isPermanent(inner) {
					return true
				}
			}
			return false
		case interface{ Unwrap() error }:
			err = e.Unwrap()
		default:
			return false
		}
	}
	return false
}

// runError is the error of a finished run. Its message is the sentinel's,
// then the detail, the wrapped error and the earlier error in brackets:
// "task: stop failed: kill: permission denied (task: timed out after 2s)".
type runError struct {
	kind   error  // the sentinel, such as ErrCanceled
	detail string // printed after the sentinel, such as "after 2s"
	err    error  // the error or cause, or nil
	prior  error  // the error the run had before, or nil

	// wrapped holds the non-nil ones of kind, err and prior, so that
	// Unwrap, which errors.Is calls at every step, allocates nothing.
	wrapped [3]error
	n       int
}

func newRunError(kind error, detail string, err, prior error) *runError {
	e := &runError{kind: kind, detail: detail, err: err, prior: prior}
	for _, w := range [...]error{kind, err, prior} {
		if w != nil {
			e.wrapped[e.n] = w
			e.n++
		}
	}
	return e
}

func (e *runError) Error() string {
	s := e.kind.Error()
	if e.detail != "" {
		s += " " + e.detail
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	if e.prior != nil {
		s += " (" + e.prior.Error() + ")"
	}
	return s
}

func (e *runError) Unwrap() []error {
	return e.wrapped[:e.n:e.n]
}

// invalidError is the error of a run that Start rejected. It prints as
// the validation error and matches ErrFailed too.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{ErrFailed, e.err} }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w "+format, append([]any{ErrInvalid}, args...)...)
}
