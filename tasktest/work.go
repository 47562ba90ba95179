package tasktest

import (
	"context"
	"fmt"

	"github.com/tasklife/task"
)

// Work is a work function that a test drives step by step. Use its Run
// method as [task.Task].Work:
//
//	work := tasktest.NewWork[string](t)
//	inv := task.Task[string]{Work: work.Run}.Start(ctx)
//	work.Return("ok")
//
// Run blocks until a step ends it. Steps given before the work begins wait
// for it, and run in the order given: [Work.ReportProgress] any number of
// times, then one of [Work.Return], [Work.Fail], [Work.FailPermanent],
// [Work.Panic] or [Work.Goexit]. Without such a step, Run returns the cause
// of its context when the run is cancelled, unless [Work.IgnoreContext] or
// [Work.Hang] was called. At the end of the test a Run still blocked
// returns an error, so that its goroutine ends with the test.
//
// A Work serves one run. Its methods are safe to call from several
// goroutines, but they fail the test with t.Fatalf, so call them from the
// test's goroutine.
type Work[T any] struct {
	s *script[T]
}

// NewWork returns a Work that reports misuse to t. Inside a synctest
// bubble, call it inside the bubble. It panics if t is nil.
func NewWork[T any](t TB) *Work[T] {
	return &Work[T]{s: newScript[T](t, "Work")}
}

// Run is the [task.WorkFunc]. It runs the steps given to the Work in order,
// and reports each progress step with [task.Invocation.ReportProgress].
func (w *Work[T]) Run(ctx context.Context, inv *task.Invocation[T]) (T, error) {
	return w.s.run(ctx, func(done, total int64) { inv.ReportProgress(done, total) })
}

// Return makes the work return v with a nil error, which completes a
// running run.
func (w *Work[T]) Return(v T) {
	w.s.t.Helper()
	w.s.enqueue(step[T]{kind: stepReturn, value: v, text: "Return(" + quote(v) + ")"})
}

// Fail makes the work return err, which fails a running run. A nil err
// fails the test: use Return for a success.
func (w *Work[T]) Fail(err error) {
	w.s.t.Helper()
	if err == nil {
		w.s.t.Fatalf("tasktest: Work.Fail(nil): a nil error completes the run; use Return for a success")
		return
	}
	w.s.enqueue(step[T]{kind: stepFail, err: err, text: fmt.Sprintf("Fail(%q)", err)})
}

// FailPermanent makes the work return [task.Permanent](err), which
// abandons a running run. A nil err fails the test.
func (w *Work[T]) FailPermanent(err error) {
	w.s.t.Helper()
	if err == nil {
		w.s.t.Fatalf("tasktest: Work.FailPermanent(nil): task.Permanent(nil) is nil, which completes the run")
		return
	}
	w.s.enqueue(step[T]{kind: stepPermanent, err: task.Permanent(err),
		text: fmt.Sprintf("FailPermanent(%q)", err)})
}

// Panic makes the work panic with v.
func (w *Work[T]) Panic(v any) {
	w.s.t.Helper()
	w.s.enqueue(step[T]{kind: stepPanic, panicValue: v, text: "Panic(" + quote(v) + ")"})
}

// Goexit makes the work end its goroutine with [runtime.Goexit] instead of
// returning, as a t.FailNow inside it would.
func (w *Work[T]) Goexit() {
	w.s.t.Helper()
	w.s.enqueue(step[T]{kind: stepGoexit, text: "Goexit()"})
}

// ReportProgress makes the work report done of total, then wait for the
// next step.
func (w *Work[T]) ReportProgress(done, total int64) {
	w.s.t.Helper()
	w.s.enqueue(step[T]{kind: stepProgress, done: done, total: total,
		text: fmt.Sprintf("ReportProgress(%d, %d)", done, total)})
}

// IgnoreContext makes the work go on waiting for its next step when its
// context ends, as work that cannot be interrupted does. A later step still
// ends it.
func (w *Work[T]) IgnoreContext() {
	w.s.setIgnoreContext()
}

// Hang makes the work ignore its context and never return before the test
// ends. A step given before or after Hang fails the test.
func (w *Work[T]) Hang() {
	w.s.t.Helper()
	w.s.setHang("Hang()")
}

// WaitBegun blocks until the work function has been called, so that the run
// is [task.StatusStarted] and its callbacks for that have been queued. It
// fails the test if that takes longer than a minute.
func (w *Work[T]) WaitBegun() {
	w.s.t.Helper()
	w.s.waitBegun("WaitBegun()")
}
