// Package tasktest helps unit-test the lifecycles of [task] runs: what a
// service does when its work completes, fails, hangs or times out, and when
// its cancel function confirms, fails or hangs.
//
// It has three parts:
//
//   - [Recorder] is a set of callbacks that records every transition,
//     ignored event and progress report of one invocation, with assertions
//     that read as the lifecycle, such as
//     rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted,
//     task.StatusCompleted). A failed assertion prints the whole history,
//     one event a line.
//   - [Work] and [Cancel] are work and cancel functions that a test drives
//     step by step: return this value, fail with this error, panic, report
//     progress, ignore the context, hang.
//   - Everything works inside a [testing/synctest] bubble, where a test of a
//     30-second Timeout and a 10-second StopTimeout runs in microseconds.
//     Create the Work, Cancel and Recorder inside the bubble, since channels
//     made outside it cannot be used inside.
//
// The package depends on the standard library only. Its helpers take a [TB],
// so they work with *testing.T and with any assertion library.
//
// # Misuse and waiting
//
// A misuse, such as a step given to a work function that has already
// returned or an assertion on a recorder that recorded nothing, fails the
// test with a message that names the mistake. A wait, such as
// [Work.WaitBegun], gives up after one minute and fails the test, so a test
// that waits for something that never happens fails instead of hanging.
// Inside a bubble that minute is fake time and passes at once when nothing
// else can run.
package tasktest

import "time"

// TB is the part of [testing.TB] that tasktest uses. *testing.T,
// *testing.B and *testing.F satisfy it.
//
// The helpers call Fatalf for a failed assertion or a misuse, so call them
// from the goroutine running the test, as with t.Fatalf. Errorf reports a
// misuse found on another goroutine, such as a work function called twice.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// waitLimit bounds every wait of the package.
//
// NOTE: inside a synctest bubble the limit is fake time, so a wait for an
// event that a longer Timeout causes fails first. Wait on the invocation's
// Done channel for such events, which has no limit.
const waitLimit = time.Minute
