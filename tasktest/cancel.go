package tasktest

import (
	"context"
	"fmt"

	"github.com/tasklife/task"
)

// Cancel is a cancel function that a test drives step by step. Use its Run
// method as [task.Task].Cancel:
//
//	cancel := tasktest.NewCancel[string](t)
//	cancel.Fail(errors.New("kill: permission denied"))
//	inv := task.Task[string]{Work: work.Run, Cancel: cancel.Run}.Start(ctx)
//
// Run blocks until one of [Cancel.Confirm], [Cancel.Fail], [Cancel.Panic]
// or [Cancel.Goexit] ends it. A step given before the cancellation begins
// waits for it. Without such a step, Run returns the cause of its context
// when StopTimeout elapses or the work returns first, unless
// [Cancel.IgnoreContext] or [Cancel.Hang] was called. At the end of the
// test a Run still blocked returns an error, so that its goroutine ends
// with the test.
//
// A Cancel serves one run. Its methods fail the test with t.Fatalf, so call
// them from the test's goroutine.
type Cancel[T any] struct {
	s *script[struct{}]
}

// NewCancel returns a Cancel that reports misuse to t. Inside a synctest
// bubble, call it inside the bubble. It panics if t is nil.
func NewCancel[T any](t TB) *Cancel[T] {
	return &Cancel[T]{s: newScript[struct{}](t, "Cancel")}
}

// Run is the [task.CancelFunc].
func (c *Cancel[T]) Run(ctx context.Context, _ *task.Invocation[T]) error {
	_, err := c.s.run(ctx, func(int64, int64) {})
	return err
}

// Confirm makes the cancel function return nil, which confirms the stop.
func (c *Cancel[T]) Confirm() {
	c.s.t.Helper()
	c.s.enqueue(step[struct{}]{kind: stepReturn, text: "Confirm()"})
}

// Fail makes the cancel function return err, which ends a stopping run
// [task.StatusUnknown]. A nil err fails the test: use Confirm.
func (c *Cancel[T]) Fail(err error) {
	c.s.t.Helper()
	if err == nil {
		c.s.t.Fatalf("tasktest: Cancel.Fail(nil): a nil error confirms the stop; use Confirm")
		return
	}
	c.s.enqueue(step[struct{}]{kind: stepFail, err: err, text: fmt.Sprintf("Fail(%q)", err)})
}

// Panic makes the cancel function panic with v.
func (c *Cancel[T]) Panic(v any) {
	c.s.t.Helper()
	c.s.enqueue(step[struct{}]{kind: stepPanic, panicValue: v, text: "Panic(" + quote(v) + ")"})
}

// Goexit makes the cancel function end its goroutine with
// [runtime.Goexit] instead of returning.
func (c *Cancel[T]) Goexit() {
	c.s.t.Helper()
	c.s.enqueue(step[struct{}]{kind: stepGoexit, text: "Goexit()"})
}

// IgnoreContext makes the cancel function go on waiting for its next step
// when its context ends. A later step still ends it, and its return is
// then too late to count if StopTimeout has already elapsed.
func (c *Cancel[T]) IgnoreContext() {
	c.s.setIgnoreContext()
}

// Hang makes the cancel function ignore its context and never return before
// the test ends. A step given before or after Hang fails the test.
func (c *Cancel[T]) Hang() {
	c.s.t.Helper()
	c.s.setHang("Hang()")
}

// WaitCalled blocks until the cancel function has been called, which
// happens once the run is [task.StatusStopping] and the work's context is
// cancelled. It fails the test if that takes longer than a minute.
func (c *Cancel[T]) WaitCalled() {
	c.s.t.Helper()
	c.s.waitBegun("WaitCalled()")
}
