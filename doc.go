// Package task runs work that outlives a function call, such as a call to
// a slow API, a subprocess or a batch step, and tells exactly where each
// run stands, how to stop it, and whether the stop itself worked.
//
// It keeps the work apart from the response to the work. A [Task] pairs a
// stateless [WorkFunc], which does the business work, with an optional
// stateless [CancelFunc], a second piece of work that tries to stop the
// first and can itself succeed, fail or hang. [Task.Start] returns an
// [Invocation], the one stateful object of a run: its status, exit code,
// result or error, custom state, and the [Callbacks] that respond to each
// lifecycle event.
//
// # Lifecycle
//
// The statuses are Spring Batch's. One transition table decides every
// change, and an event it rejects reaches [Callbacks.Ignored]:
//
//	STARTING ─▶ STARTED ─▶ COMPLETED
//	   │           ├─────▶ FAILED ─────────┐
//	   │           ├─────▶ ABANDONED       │ Abandon
//	   │           ▼  Cancel, Timeout      ▼
//	   └───────▶ STOPPING ─▶ STOPPED ──▶ ABANDONED
//	                   └───▶ UNKNOWN ──▶ ABANDONED
//
// A timeout is one more way into cancellation. Cancellation first cancels
// the work's context, then runs the cancel function, bounded by
// StopTimeout. The run is STOPPED when the cancel function returns nil or
// the work returns, and UNKNOWN when the cancel function fails or runs out
// of time, since nobody then knows whether the work still runs. The
// [ExitCode] says why a run ended, apart from where.
//
// FAILED, STOPPED and UNKNOWN runs may be retried by the caller; an
// ABANDONED run never should be. The package has no retry loop, scheduler
// or worker pool of its own.
//
// # Cost
//
// A run uses one goroutine for the work while it runs and a second only
// while a cancel function runs. Timers are [time.AfterFunc] timers. Once a
// run has finished and its work and cancel functions have returned, nothing
// of the library is left: no goroutine, timer or context registration.
package task
