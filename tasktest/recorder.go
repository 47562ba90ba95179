package tasktest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tasklife/task"
)

// Recorder records what the callbacks of one invocation see: every
// transition, ignored event and progress report, in order, with the time
// each happened. Give its [Recorder.Callbacks] to [task.Task.Start]:
//
//	var rec tasktest.Recorder[string]
//	inv := tk.Start(ctx, task.WithCallbacks(rec.Callbacks()))
//	<-inv.Done()
//	rec.RequireStatuses(t, task.StatusStarting, task.StatusStarted, task.StatusCompleted)
//
// The zero Recorder is ready to use. A Recorder records one invocation:
// give each Start its own. The Require methods fail the test with
// t.Fatalf and print the whole history, so call them from the test's
// goroutine. A Recorder must not be copied after first use.
//
// Callbacks of a second invocation are not recorded, and they make every
// Require method fail.
type Recorder[T any] struct {
	// mu guards the fields below.
	mu       sync.Mutex
	id       string // the recorded invocation's ID
	inv      *task.Invocation[T]
	entries  []Entry[T]
	pending  Entry[T] // the arguments of the named callback, until Changed completes the entry
	problems []string
	changed  chan struct{} // closed and replaced when an entry is added
}

// EntryKind is the type of event that an [Entry] records.
type EntryKind uint8

const (
	// KindTransition is a change of status, from the Changed callback.
	KindTransition EntryKind = iota + 1
	// KindIgnored is an event that changed nothing, from the Ignored
	// callback.
	KindIgnored
	// KindProgress is a progress report, from the Progress callback.
	KindProgress
)

// Entry is one event that a [Recorder] saw.
type Entry[T any] struct {
	Kind EntryKind
	// At is when the event happened: the time of the transition or of the
	// ignored event, or when the Progress callback ran.
	At time.Time

	// Transition is set for KindTransition.
	Transition task.Transition
	// Result is the value passed to the Completed callback, for a
	// transition to StatusCompleted.
	Result T
	// Err is the error passed to the callback named for the transition:
	// the error of Failed, StopFailed or Abandoned, or the cause of
	// Cancelling. For Stopped and StopTimedOut, which take no error, it is
	// the error [task.Invocation.Result] returned when they ran. It is nil
	// for the other transitions.
	Err error

	// Ignored is set for KindIgnored.
	Ignored task.Ignored[T]

	// Progress is set for KindProgress.
	Progress task.Progress
}

// String returns the entry as one line, without its time, such as
// "STARTED -> STOPPING on timeout (exit timedOut): task: timed out after 30s".
func (e Entry[T]) String() string {
	switch e.Kind {
	case KindTransition:
		tr := e.Transition
		var b strings.Builder
		if tr.From != 0 {
			b.WriteString(tr.From.String() + " ")
		}
		fmt.Fprintf(&b, "-> %s on %s", tr.To, tr.Event)
		if tr.ExitCode != task.ExitUnknown {
			fmt.Fprintf(&b, " (exit %s)", tr.ExitCode)
		}
		if tr.To == task.StatusCompleted {
			b.WriteString(": result " + quote(e.Result))
		} else if e.Err != nil {
			b.WriteString(": " + e.Err.Error())
		}
		return b.String()
	case KindIgnored:
		ig := e.Ignored
		s := fmt.Sprintf("ignored %s in %s", ig.Event, ig.Status)
		if ig.Err != nil {
			return s + ": " + ig.Err.Error()
		}
		if ig.Event == task.EventReturn {
			return s + ": value " + quote(ig.Value)
		}
		return s
	case KindProgress:
		return fmt.Sprintf("progress %d/%d", e.Progress.Done, e.Progress.Total)
	}
	return fmt.Sprintf("EntryKind(%d)", e.Kind)
}

// Callbacks returns the callbacks that record into r, for
// [task.WithCallbacks]. For a nil r they record nothing, and every Require
// method of r fails the test.
func (r *Recorder[T]) Callbacks() task.Callbacks[T] {
	if r == nil {
		return task.Callbacks[T]{}
	}
	type inv = *task.Invocation[T]
	return task.Callbacks[T]{
		Completed:    func(i inv, result T) { r.hold(i, result, nil) },
		Failed:       func(i inv, err error) { r.hold(i, *new(T), err) },
		Cancelling:   func(i inv, cause error) { r.hold(i, *new(T), cause) },
		StopFailed:   func(i inv, err error) { r.hold(i, *new(T), err) },
		Abandoned:    func(i inv, err error) { r.hold(i, *new(T), err) },
		Stopped:      func(i inv) { r.holdResult(i) },
		StopTimedOut: func(i inv) { r.holdResult(i) },
		Changed: func(i inv, tr task.Transition) {
			r.record(i, func(e *Entry[T]) {
				*e, r.pending = r.pending, Entry[T]{}
				e.Kind, e.At, e.Transition = KindTransition, tr.At, tr
			})
		},
		Ignored: func(i inv, ig task.Ignored[T]) {
			r.record(i, func(e *Entry[T]) { e.Kind, e.At, e.Ignored = KindIgnored, ig.At, ig })
		},
		Progress: func(i inv, done, total int64) {
			r.record(i, func(e *Entry[T]) {
				e.Kind, e.At, e.Progress = KindProgress, time.Now(), task.Progress{Done: done, Total: total}
			})
		},
	}
}

// hold keeps what a named callback saw for the Changed callback of the
// same transition, which fires after it.
func (r *Recorder[T]) hold(inv *task.Invocation[T], result T, err error) {
	if !r.enter(inv) {
		return
	}
	r.mu.Lock()
	r.pending.Result, r.pending.Err = result, err
	r.mu.Unlock()
}

// record appends the entry that fill, called with r.mu held, makes.
func (r *Recorder[T]) record(inv *task.Invocation[T], fill func(*Entry[T])) {
	if !r.enter(inv) {
		return
	}
	var e Entry[T]
	r.mu.Lock()
	fill(&e)
	r.entries = append(r.entries, e)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
}

// holdResult holds the run's error for a named callback that takes none.
func (r *Recorder[T]) holdResult(inv *task.Invocation[T]) {
	_, err := inv.Result()
	r.hold(inv, *new(T), err)
}

// enter reports whether a callback of inv belongs to the recorded
// invocation, the first one it saw.
func (r *Recorder[T]) enter(inv *task.Invocation[T]) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inv == nil {
		r.inv, r.id = inv, inv.ID()
	}
	if inv == r.inv {
		return true
	}
	p := fmt.Sprintf("callbacks of a second invocation %s reached this recorder, which records "+
		"one invocation; give each Start its own Recorder", inv.ID())
	if !slices.Contains(r.problems, p) {
		r.problems = append(r.problems, p)
	}
	return false
}

// Entries returns a copy of what r has recorded, in order.
func (r *Recorder[T]) Entries() []Entry[T] {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.entries)
}

// Statuses returns the status of each recorded transition, in order.
func (r *Recorder[T]) Statuses() []task.Status {
	var out []task.Status
	for _, e := range r.Entries() {
		if e.Kind == KindTransition {
			out = append(out, e.Transition.To)
		}
	}
	return out
}

// String returns the recorded history, one entry a line, each with its
// time since the first entry.
func (r *Recorder[T]) String() string {
	if r == nil {
		return "<nil *tasktest.Recorder>"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.historyLocked()
}

func (r *Recorder[T]) historyLocked() string {
	if len(r.entries) == 0 {
		return "history: nothing recorded"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "history of invocation %s:", r.id)
	start := r.entries[0].At
	for _, e := range r.entries {
		fmt.Fprintf(&b, "\n  %-10s %s", "+"+e.At.Sub(start).String(), e)
	}
	return b.String()
}

// check returns the reason an assertion cannot be made on r, or "".
func (r *Recorder[T]) check() string {
	if r == nil {
		return "nil *Recorder: declare a Recorder value, or use new(tasktest.Recorder[T])"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) > 0 {
		return strings.Join(r.problems, "\n") + "\n" + r.historyLocked()
	}
	if len(r.entries) == 0 {
		return "the recorder has recorded nothing: start the run with " +
			"task.WithCallbacks(rec.Callbacks()), and check that Start was called"
	}
	return ""
}

// fail fails the test with the message and the history.
func (r *Recorder[T]) fail(t TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("tasktest: "+format+"\n%s", append(args, r.String())...)
}

// RequireStatuses fails the test unless the recorded transitions went
// through exactly the statuses want, in order. A run that has not finished
// may have fewer, so wait on its Done channel first.
func (r *Recorder[T]) RequireStatuses(t TB, want ...task.Status) {
	t.Helper()
	if p := r.check(); p != "" {
		t.Fatalf("tasktest: RequireStatuses: %s", p)
		return
	}
	if got := r.Statuses(); !slices.Equal(got, want) {
		r.fail(t, "statuses %v, want %v", got, want)
	}
}

// RequireExitCode fails the test unless the exit code after the last
// recorded transition is want.
func (r *Recorder[T]) RequireExitCode(t TB, want task.ExitCode) {
	t.Helper()
	if p := r.check(); p != "" {
		t.Fatalf("tasktest: RequireExitCode: %s", p)
		return
	}
	var got task.ExitCode
	for _, e := range r.Entries() {
		if e.Kind == KindTransition {
			got = e.Transition.ExitCode
		}
	}
	if got != want {
		r.fail(t, "exit code %s, want %s", got, want)
	}
}

// RequireIgnored fails the test unless the ignored events recorded were
// exactly want, in order.
func (r *Recorder[T]) RequireIgnored(t TB, want ...task.Event) {
	t.Helper()
	if p := r.check(); p != "" {
		t.Fatalf("tasktest: RequireIgnored: %s", p)
		return
	}
	var got []task.Event
	for _, e := range r.Entries() {
		if e.Kind == KindIgnored {
			got = append(got, e.Ignored.Event)
		}
	}
	if !slices.Equal(got, want) {
		r.fail(t, "ignored events %v, want %v", got, want)
	}
}

// RequireProgress fails the test unless the progress reports recorded were
// exactly want, in order.
func (r *Recorder[T]) RequireProgress(t TB, want ...task.Progress) {
	t.Helper()
	if p := r.check(); p != "" {
		t.Fatalf("tasktest: RequireProgress: %s", p)
		return
	}
	var got []task.Progress
	for _, e := range r.Entries() {
		if e.Kind == KindProgress {
			got = append(got, e.Progress)
		}
	}
	if !slices.Equal(got, want) {
		r.fail(t, "progress %v, want %v", got, want)
	}
}

// WaitStatus blocks until a transition to status has been recorded. It
// fails the test at once if the run ended in a final status without
// reaching status, and after a minute otherwise.
//
// Use it where the callbacks may run on another goroutine after the call
// that caused them returned, such as after [task.Invocation.Abandon] while
// another goroutine is running the invocation's callbacks.
func (r *Recorder[T]) WaitStatus(t TB, status task.Status) {
	t.Helper()
	r.wait(t, "WaitStatus("+status.String()+")", func(entries []Entry[T]) (bool, string) {
		var last task.Status
		for _, e := range entries {
			if e.Kind != KindTransition {
				continue
			}
			if e.Transition.To == status {
				return true, ""
			}
			last = e.Transition.To
		}
		if last == task.StatusCompleted || last == task.StatusAbandoned {
			return false, fmt.Sprintf("the run ended %s without reaching %s", last, status)
		}
		return false, ""
	})
}

// WaitIgnored blocks until an ignored event e has been recorded, such as
// the return of a work function after the run ended. It fails the test
// after a minute.
func (r *Recorder[T]) WaitIgnored(t TB, e task.Event) {
	t.Helper()
	r.wait(t, "WaitIgnored("+e.String()+")", func(entries []Entry[T]) (bool, string) {
		for _, entry := range entries {
			if entry.Kind == KindIgnored && entry.Ignored.Event == e {
				return true, ""
			}
		}
		return false, ""
	})
}

// wait blocks until cond holds for the entries, cond reports why it never
// will, or waitLimit passes.
func (r *Recorder[T]) wait(t TB, method string, cond func([]Entry[T]) (bool, string)) {
	t.Helper()
	if r == nil {
		t.Fatalf("tasktest: %s: nil *Recorder: declare a Recorder value, or use new(tasktest.Recorder[T])", method)
		return
	}
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		r.mu.Lock()
		ok, never := cond(r.entries)
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		switch {
		case ok:
			return
		case never != "":
			r.fail(t, "%s: %s", method, never)
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			r.fail(t, "%s: not recorded within %v", method, waitLimit)
			return
		}
	}
}
