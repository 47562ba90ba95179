package task_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/tasklife/task"
)

// The lifecycle, written out here from its specification rather than read
// from the package, so that a wrong cell in the package's own table fails
// these tests instead of agreeing with them.

// cell is one (status, event) pair of the transition table.
type cell struct {
	from  task.Status
	event task.Event
}

// step is what the table does with an accepted event.
type step struct {
	to      []task.Status // two statuses when the event moves the run twice at once
	code    task.ExitCode // the new exit code, if setCode
	setCode bool
	late    bool // a work return that confirms a stop: it also reaches Ignored
}

var lifecycle = func() map[cell]step {
	const (
		starting  = task.StatusStarting
		started   = task.StatusStarted
		completed = task.StatusCompleted
		failed    = task.StatusFailed
		stopping  = task.StatusStopping
		stopped   = task.StatusStopped
		unknown   = task.StatusUnknown
		abandoned = task.StatusAbandoned
	)
	set := func(code task.ExitCode, to ...task.Status) step {
		return step{to: to, code: code, setCode: true}
	}
	keep := func(to task.Status) step { return step{to: []task.Status{to}} }

	m := map[cell]step{
		{0, task.EventStart}:   set(task.ExitUnknown, starting),
		{0, task.EventInvalid}: set(task.ExitFailed, failed),

		{starting, task.EventBegin}:   keep(started),
		{starting, task.EventCancel}:  set(task.ExitCanceled, stopping, stopped),
		{starting, task.EventTimeout}: set(task.ExitTimedOut, stopping, stopped),

		{started, task.EventReturn}:    set(task.ExitCompleted, completed),
		{started, task.EventFail}:      set(task.ExitFailed, failed),
		{started, task.EventPermanent}: set(task.ExitFailed, abandoned),
		{started, task.EventCancel}:    set(task.ExitCanceled, stopping),
		{started, task.EventTimeout}:   set(task.ExitTimedOut, stopping),

		{stopping, task.EventConfirm}:     keep(stopped),
		{stopping, task.EventStopFail}:    set(task.ExitCancelFailed, unknown),
		{stopping, task.EventStopTimeout}: set(task.ExitCancelTimedOut, unknown),

		{failed, task.EventAbandon}:  keep(abandoned),
		{stopped, task.EventAbandon}: keep(abandoned),
		{unknown, task.EventAbandon}: keep(abandoned),
	}
	for _, e := range []task.Event{task.EventReturn, task.EventFail, task.EventPermanent} {
		m[cell{stopping, e}] = step{to: []task.Status{stopped}, late: true}
	}
	return m
}()

// allStatuses and allEvents include the zero Status and every defined
// Event, for walking the whole table.
var (
	allStatuses = []task.Status{0, task.StatusStarting, task.StatusStarted, task.StatusCompleted,
		task.StatusFailed, task.StatusStopping, task.StatusStopped, task.StatusUnknown,
		task.StatusAbandoned}
	allEvents = []task.Event{task.EventStart, task.EventInvalid, task.EventBegin, task.EventReturn,
		task.EventFail, task.EventPermanent, task.EventCancel, task.EventTimeout, task.EventConfirm,
		task.EventStopFail, task.EventStopTimeout, task.EventAbandon, task.EventProgress}
)

// checkPath returns an error naming the first transition of history that
// is not a step of the lifecycle, or nil if history is a path through it
// from the zero Status with times that never go back.
func checkPath(history []task.Transition) error {
	var (
		status task.Status
		code   task.ExitCode
		at     time.Time
	)
	for i := 0; i < len(history); {
		tr := history[i]
		s, ok := lifecycle[cell{status, tr.Event}]
		if !ok {
			return fmt.Errorf("transition %d %+v: the lifecycle rejects %s in %q", i, tr, tr.Event, status)
		}
		if s.setCode {
			code = s.code
		}
		from := status
		for j, to := range s.to {
			if i+j >= len(history) {
				return fmt.Errorf("transition %d: %s from %q must go on to %q at once", i, tr.Event, status, to)
			}
			got := history[i+j]
			want := task.Transition{From: from, To: to, Event: tr.Event, ExitCode: code, At: got.At}
			if got != want {
				return fmt.Errorf("transition %d: got %+v, want %+v", i+j, got, want)
			}
			if got.At.Before(at) {
				return fmt.Errorf("transition %d: at %v, before the one ahead of it at %v", i+j, got.At, at)
			}
			from, at = to, got.At
		}
		status = from
		i += len(s.to)
	}
	return nil
}

// rejects reports whether the lifecycle rejects e in status s, so that e
// reaches Ignored and changes nothing.
func rejects(s task.Status, e task.Event) bool {
	_, ok := lifecycle[cell{s, e}]
	return !ok
}

// wantCallbacks returns the names of the Callbacks fields that tr fires,
// in order.
func wantCallbacks(tr task.Transition) []string {
	var names []string
	switch tr.To {
	case task.StatusStarted:
		names = []string{"Started"}
	case task.StatusCompleted:
		names = []string{"Completed"}
	case task.StatusFailed:
		names = []string{"Failed"}
	case task.StatusStopping:
		if tr.Event == task.EventTimeout {
			names = []string{"TimedOut"}
		}
		names = append(names, "Cancelling")
	case task.StatusStopped:
		names = []string{"Stopped"}
	case task.StatusUnknown:
		if tr.ExitCode == task.ExitCancelTimedOut {
			names = []string{"StopTimedOut"}
		} else {
			names = []string{"StopFailed"}
		}
	case task.StatusAbandoned:
		names = []string{"Abandoned"}
	}
	return append(names, "Changed")
}

// TestCheckPath_RejectsWrongSteps checks the path check itself, since
// every other test here trusts it.
func TestCheckPath_RejectsWrongSteps(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	valid := []task.Transition{
		{To: task.StatusStarting, Event: task.EventStart, At: at},
		{From: task.StatusStarting, To: task.StatusStarted, Event: task.EventBegin, At: at},
		{From: task.StatusStarted, To: task.StatusStopping, Event: task.EventTimeout,
			ExitCode: task.ExitTimedOut, At: at},
		{From: task.StatusStopping, To: task.StatusUnknown, Event: task.EventStopFail,
			ExitCode: task.ExitCancelFailed, At: at.Add(time.Second)},
		{From: task.StatusUnknown, To: task.StatusAbandoned, Event: task.EventAbandon,
			ExitCode: task.ExitCancelFailed, At: at.Add(time.Second)},
	}
	require.NoError(t, checkPath(valid))

	broken := map[string]func(h []task.Transition) []task.Transition{
		"first status skipped":   func(h []task.Transition) []task.Transition { return h[1:] },
		"step from wrong status": func(h []task.Transition) []task.Transition { h[2].From = task.StatusStarting; return h },
		"rejected event accepted": func(h []task.Transition) []task.Transition {
			h[1].Event = task.EventReturn
			return h
		},
		"exit code not kept":  func(h []task.Transition) []task.Transition { h[4].ExitCode = 0; return h },
		"exit code not set":   func(h []task.Transition) []task.Transition { h[2].ExitCode = task.ExitCanceled; return h },
		"time going backward": func(h []task.Transition) []task.Transition { h[4].At = at; return h },
		"second hop missing": func([]task.Transition) []task.Transition {
			return []task.Transition{
				{To: task.StatusStarting, Event: task.EventStart, At: at},
				{From: task.StatusStarting, To: task.StatusStopping, Event: task.EventCancel,
					ExitCode: task.ExitCanceled, At: at},
			}
		},
	}
	for name, breakPath := range broken {
		t.Run(name, func(t *testing.T) {
			assert.Error(t, checkPath(breakPath(slices.Clone(valid))))
		})
	}
}

// Random runs.

// ending is how a work or cancel function ends.
type ending int

const (
	endValue ending = iota
	endError
	endPermanent
	endPanicValue
	endPanicError
	endPanicNil
	endGoexit
)

var endingNames = []string{"value", "error", "permanent", "panic value", "panic error", "panic nil", "goexit"}

func (e ending) String() string { return endingNames[e] }

// event returns the event that the work ending this way causes.
func (e ending) event() task.Event {
	switch e {
	case endValue:
		return task.EventReturn
	case endPermanent:
		return task.EventPermanent
	}
	return task.EventFail
}

// cancelKind is what a generated cancel function does.
type cancelKind int

const (
	cancelNone    cancelKind = iota // Task.Cancel is nil
	cancelConfirm                   // returns nil after its delay
	cancelFail                      // returns an error after its delay
	cancelPanic                     // panics after its delay
	cancelHang                      // ignores its context for an hour, then returns nil
	cancelWatch                     // returns its context's error when it ends, or nil after its delay
)

// callerOp is one call a caller goroutine makes on the invocation.
type callerOp int

const (
	opCancel callerOp = iota
	opAbandon
	opWait
	opWaitBriefly
	opStatus
	opSnapshot
	opProgress
	opResult
)

// reentry is what a callback of the first set does on its own invocation.
type reentry int

const (
	reenterNone reentry = iota
	reenterStatus
	reenterSnapshot
	reenterCancel
	reenterAbandon
	reenterProgress
)

var callbackNames = []string{"Started", "Completed", "Failed", "Cancelling", "TimedOut", "Stopped",
	"StopFailed", "StopTimedOut", "Abandoned", "Progress", "Ignored", "Changed"}

type workPlan struct {
	delay time.Duration
	watch bool   // the work ends early, as onCancel, when its context ends
	end   ending // how it ends after delay
	// onCancel is how it ends when its context ends first.
	onCancel ending
}

type cancelPlan struct {
	kind  cancelKind
	delay time.Duration
}

type callerPlan struct {
	ops    []callerOp
	delays []time.Duration // before each op
}

type runPlan struct {
	work        workPlan
	cancel      cancelPlan
	timeout     time.Duration
	stopTimeout time.Duration
	parentEnd   time.Duration // when the parent context ends; 0 for never before the checks
	callers     []callerPlan
	sets        int // callback sets, 1 or 2
	reentries   map[string]reentry
	sleepIn     string // a callback of the first set that sleeps for sleepFor
	sleepFor    time.Duration
	panicIn     string // a callback of the last set that panics each time it runs
}

// drawDelay draws a short delay from a small range of whole milliseconds,
// so that different events often fall on the same instant of the
// bubble's clock and race for real.
func drawDelay(t *rapid.T, label string) time.Duration {
	return time.Duration(rapid.IntRange(0, 8).Draw(t, label)) * time.Millisecond
}

func drawPlan(t *rapid.T) runPlan {
	endings := rapid.SampledFrom([]ending{endValue, endError, endPermanent, endPanicValue,
		endPanicError, endPanicNil, endGoexit})
	p := runPlan{
		work: workPlan{
			delay:    drawDelay(t, "work delay"),
			watch:    rapid.Bool().Draw(t, "work watches context"),
			end:      endings.Draw(t, "work end"),
			onCancel: endings.Draw(t, "work end on cancel"),
		},
		cancel: cancelPlan{
			kind:  cancelKind(rapid.IntRange(int(cancelNone), int(cancelWatch)).Draw(t, "cancel kind")),
			delay: drawDelay(t, "cancel delay"),
		},
		timeout:     drawDelay(t, "timeout"),
		stopTimeout: drawDelay(t, "stop timeout"),
		sets:        rapid.IntRange(1, 2).Draw(t, "callback sets"),
		reentries:   map[string]reentry{},
	}
	if rapid.Bool().Draw(t, "parent ends") {
		p.parentEnd = drawDelay(t, "parent end") + time.Nanosecond
	}

	callers := rapid.IntRange(0, 3).Draw(t, "callers")
	for range callers {
		var c callerPlan
		for range rapid.IntRange(1, 4).Draw(t, "caller ops") {
			c.ops = append(c.ops, callerOp(rapid.IntRange(int(opCancel), int(opResult)).Draw(t, "op")))
			c.delays = append(c.delays, drawDelay(t, "op delay"))
		}
		p.callers = append(p.callers, c)
	}

	for _, name := range callbackNames {
		maxReentry := reenterProgress
		if name == "Ignored" || name == "Progress" {
			maxReentry = reenterSnapshot // anything more would call itself again without end
		}
		p.reentries[name] = reentry(rapid.IntRange(int(reenterNone), int(maxReentry)).Draw(t, "reentry "+name))
	}
	if rapid.Bool().Draw(t, "a callback sleeps") {
		p.sleepIn = rapid.SampledFrom(callbackNames).Draw(t, "sleeping callback")
		p.sleepFor = drawDelay(t, "callback sleep")
	}
	if rapid.Bool().Draw(t, "a callback panics") {
		p.panicIn = rapid.SampledFrom(callbackNames).Draw(t, "panicking callback")
	}
	return p
}

// callbackRecord is one call of a callback.
type callbackRecord struct {
	set        int
	name       string
	tr         task.Transition // for Changed
	result     int             // for Completed
	err        error           // for Failed, Cancelling, StopFailed, Abandoned
	ignored    task.Ignored[int]
	progress   task.Progress
	doneClosed bool // whether Done was closed when the callback began
}

// callRecord is one call of Cancel, Abandon or ReportProgress and what it
// returned.
type callRecord struct {
	op   callerOp
	arg  error
	done int64 // for ReportProgress
	ok   bool
}

// observation is one read of the invocation by a caller or a callback.
type observation struct {
	status   task.Status
	snapshot *task.Snapshot[int]
	value    int
	err      error
	isResult bool // value and err came from Result or Wait
	waitErr  bool // Wait returned because its own context ended
}

// recorder runs one planned run and records everything that happened.
type recorder struct {
	plan runPlan

	workValue  int
	workErr    error
	stopErr    error
	panicValue string

	active   atomic.Int32 // callbacks running now
	overlaps atomic.Int32 // callbacks that began while another ran

	workCalls atomic.Int32
	// workDoneEarly is set if WorkDone was closed while the work ran.
	workDoneEarly atomic.Bool
	cancelCalls   atomic.Int32
	workDone      chan struct{}
	cancelDone    chan struct{}
	workEvent     task.Event // set before workDone closes

	mu        sync.Mutex
	log       []callbackRecord
	calls     []callRecord
	readers   [][]observation // one sequence per caller, and the last one for callbacks
	progress  atomic.Int64
	reentries int
}

func newRecorder(p runPlan) *recorder {
	return &recorder{
		plan:       p,
		workValue:  42,
		workErr:    errors.New("disk full"),
		stopErr:    errors.New("kill: permission denied"),
		panicValue: "callback panic",
		workDone:   make(chan struct{}),
		cancelDone: make(chan struct{}),
		readers:    make([][]observation, len(p.callers)+1),
	}
}

func (r *recorder) task() task.Task[int] {
	tk := task.Task[int]{
		Work:        r.work,
		Timeout:     r.plan.timeout,
		StopTimeout: r.plan.stopTimeout,
	}
	if r.plan.cancel.kind != cancelNone {
		tk.Cancel = r.cancelFunc
	}
	return tk
}

func (r *recorder) work(ctx context.Context, inv *task.Invocation[int]) (int, error) {
	r.workCalls.Add(1)
	defer close(r.workDone)
	select {
	case <-inv.WorkDone():
		r.workDoneEarly.Store(true)
	default:
	}

	end := r.plan.work.end
	if r.plan.work.watch {
		select {
		case <-time.After(r.plan.work.delay):
		case <-ctx.Done():
			end = r.plan.work.onCancel
		}
	} else {
		time.Sleep(r.plan.work.delay)
	}
	r.workEvent = end.event()

	switch end {
	case endValue:
		return r.workValue, nil
	case endError:
		return 0, r.workErr
	case endPermanent:
		return 0, task.Permanent(r.workErr)
	case endPanicValue:
		panic("work panic")
	case endPanicError:
		panic(r.workErr)
	case endPanicNil:
		panic(nil)
	default:
		runtime.Goexit()
		return 0, nil
	}
}

func (r *recorder) cancelFunc(ctx context.Context, _ *task.Invocation[int]) error {
	r.cancelCalls.Add(1)
	defer close(r.cancelDone)

	switch r.plan.cancel.kind {
	case cancelHang:
		time.Sleep(time.Hour)
		return nil
	case cancelWatch:
		select {
		case <-time.After(r.plan.cancel.delay):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	time.Sleep(r.plan.cancel.delay)
	switch r.plan.cancel.kind {
	case cancelFail:
		return r.stopErr
	case cancelPanic:
		panic("cancel panic")
	}
	return nil
}

// callbacks returns the callback set number set, each of which records
// its call and then does what the plan gives for it.
func (r *recorder) callbacks(set int) task.Callbacks[int] {
	on := func(inv *task.Invocation[int], rec callbackRecord) {
		rec.set = set
		r.callback(inv, rec)
	}
	return task.Callbacks[int]{
		Started:   func(inv *task.Invocation[int]) { on(inv, callbackRecord{name: "Started"}) },
		Completed: func(inv *task.Invocation[int], v int) { on(inv, callbackRecord{name: "Completed", result: v}) },
		Failed:    func(inv *task.Invocation[int], err error) { on(inv, callbackRecord{name: "Failed", err: err}) },
		Cancelling: func(inv *task.Invocation[int], cause error) {
			on(inv, callbackRecord{name: "Cancelling", err: cause})
		},
		TimedOut: func(inv *task.Invocation[int]) { on(inv, callbackRecord{name: "TimedOut"}) },
		Stopped:  func(inv *task.Invocation[int]) { on(inv, callbackRecord{name: "Stopped"}) },
		StopFailed: func(inv *task.Invocation[int], err error) {
			on(inv, callbackRecord{name: "StopFailed", err: err})
		},
		StopTimedOut: func(inv *task.Invocation[int]) { on(inv, callbackRecord{name: "StopTimedOut"}) },
		Abandoned: func(inv *task.Invocation[int], err error) {
			on(inv, callbackRecord{name: "Abandoned", err: err})
		},
		Progress: func(inv *task.Invocation[int], done, total int64) {
			on(inv, callbackRecord{name: "Progress", progress: task.Progress{Done: done, Total: total}})
		},
		Ignored: func(inv *task.Invocation[int], e task.Ignored[int]) {
			on(inv, callbackRecord{name: "Ignored", ignored: e})
		},
		Changed: func(inv *task.Invocation[int], tr task.Transition) {
			on(inv, callbackRecord{name: "Changed", tr: tr})
		},
	}
}

func (r *recorder) callback(inv *task.Invocation[int], rec callbackRecord) {
	if r.active.Add(1) != 1 {
		r.overlaps.Add(1)
	}
	defer r.active.Add(-1)

	select {
	case <-inv.Done():
		rec.doneClosed = true
	default:
	}
	r.mu.Lock()
	r.log = append(r.log, rec)
	r.mu.Unlock()

	if rec.set == 0 {
		r.reenter(inv, r.plan.reentries[rec.name])
		if rec.name == r.plan.sleepIn {
			time.Sleep(r.plan.sleepFor)
		}
	}
	if rec.set == r.plan.sets-1 && rec.name == r.plan.panicIn {
		panic(r.panicValue)
	}
}

// reenter makes a callback call into its own invocation.
func (r *recorder) reenter(inv *task.Invocation[int], what reentry) {
	reader := len(r.readers) - 1
	switch what {
	case reenterStatus:
		r.observe(reader, observation{status: inv.Status()})
	case reenterSnapshot:
		s := inv.Snapshot()
		r.observe(reader, observation{status: s.Status, snapshot: &s})
	case reenterCancel:
		r.call(inv, opCancel)
	case reenterAbandon:
		r.call(inv, opAbandon)
	case reenterProgress:
		r.call(inv, opProgress)
	}
}

func (r *recorder) observe(reader int, o observation) {
	r.mu.Lock()
	r.readers[reader] = append(r.readers[reader], o)
	r.mu.Unlock()
}

// call makes a call that the lifecycle may reject and records whether it
// did. Each call gets its own cause, reason or progress value, so that
// its Ignored event can be identified.
func (r *recorder) call(inv *task.Invocation[int], op callerOp) {
	c := callRecord{op: op}
	switch op {
	case opCancel:
		c.arg = fmt.Errorf("cause %d", r.progress.Add(1))
		c.ok = inv.Cancel(c.arg)
	case opAbandon:
		c.arg = fmt.Errorf("reason %d", r.progress.Add(1))
		c.ok = inv.Abandon(c.arg)
	case opProgress:
		c.done = r.progress.Add(1)
		c.ok = inv.ReportProgress(c.done, 1000)
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// runCaller makes the calls of caller number i.
func (r *recorder) runCaller(inv *task.Invocation[int], i int) {
	c := r.plan.callers[i]
	for k, op := range c.ops {
		time.Sleep(c.delays[k])
		switch op {
		case opCancel, opAbandon, opProgress:
			r.call(inv, op)
		case opWait:
			v, err := inv.Wait(context.Background())
			r.observe(i, observation{value: v, err: err, isResult: true})
		case opWaitBriefly:
			ctx, cancel := context.WithTimeout(context.Background(), c.delays[k])
			v, err := inv.Wait(ctx)
			ended := ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded)
			cancel()
			r.observe(i, observation{value: v, err: err, isResult: !ended, waitErr: ended})
		case opStatus:
			r.observe(i, observation{status: inv.Status()})
		case opSnapshot:
			s := inv.Snapshot()
			r.observe(i, observation{status: s.Status, snapshot: &s})
		case opResult:
			finished := inv.Status().Finished()
			v, err := inv.Result()
			r.observe(i, observation{value: v, err: err, isResult: finished})
		}
	}
}

// TestInvocation_RandomRuns runs random lifecycles in testing/synctest
// bubbles and checks every guarantee the package makes about one run.
// The history is a path of the lifecycle. Each callback fires once per
// transition, in order, and never two at once. Done closes once the
// finishing callbacks have returned. Every reader agrees with the history,
// every rejected event reaches Ignored, and nothing of the library is left
// afterwards. The number of runs is -rapid.checks.
func TestInvocation_RandomRuns(t *testing.T) {
	// A run of an earlier test can still be finishing: Wait returns once
	// Done closes, a moment before the work's goroutine exits. The check
	// for goroutines left behind must not count those.
	require.Eventually(t, func() bool { return len(libraryGoroutines()) == 0 },
		10*time.Second, time.Millisecond, "goroutines of earlier tests still running")
	rapid.Check(t, func(t *rapid.T) {
		plan := drawPlan(t)
		rapid.SyncTest(t, func(t *rapid.T) {
			checkRandomRun(t, plan)
		})
	})
}

func checkRandomRun(t *rapid.T, plan runPlan) {
	r := newRecorder(plan)
	parent, endParent := context.WithCancelCause(context.Background())
	parentCause := errors.New("parent ended")
	defer endParent(nil)

	opts := []task.Option{}
	for set := range plan.sets {
		opts = append(opts, task.WithCallbacks(r.callbacks(set)))
	}
	inv := r.task().Start(parent, opts...)
	require.NotNil(t, inv)

	// The callers and the end of the parent run beside the run.
	var callers sync.WaitGroup
	for i := range plan.callers {
		callers.Go(func() { r.runCaller(inv, i) })
	}
	parentEndedEarly := false
	if plan.parentEnd > 0 {
		time.Sleep(plan.parentEnd)
		endParent(parentCause)
		// If the run is still going now, the parent's end must reach it.
		parentEndedEarly = !inv.Status().Finished()
	}

	<-inv.Done()
	callers.Wait()
	synctest.Wait()
	if r.workCalls.Load() > 0 {
		<-r.workDone
	}
	if r.cancelCalls.Load() > 0 {
		<-r.cancelDone
	}
	synctest.Wait()

	// The parent ends now if it has not, and the clock runs on past every
	// timer, so that a timer or a registration with the parent that the
	// run failed to release has its effect before the checks. A callback
	// that sleeps can still be running here, so the clock runs on in any
	// case.
	endParent(parentCause)
	time.Sleep(24 * time.Hour)
	synctest.Wait()
	assert.Empty(t, libraryGoroutines(), "goroutines of the library left running")

	s := inv.Snapshot()
	require.NoError(t, checkPath(s.History))
	require.NotEmpty(t, s.History)

	checkOutcome(t, r, inv, s)
	notices := checkCallbackOrder(t, r, s)
	checkIgnored(t, r, s, notices, parentCause, parentEndedEarly)
	checkReaders(t, r, s)
}

// libraryGoroutines returns the stacks of the goroutines that are running
// code of the package itself, not of its tests.
func libraryGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/tasklife/task.") {
			found = append(found, g)
		}
	}
	return found
}

// checkOutcome checks that the run finished, and that every way of
// reading its outcome agrees with the last transition.
func checkOutcome(t *rapid.T, r *recorder, inv *task.Invocation[int], s task.Snapshot[int]) {
	last := s.History[len(s.History)-1]
	require.True(t, s.Status.Finished(), "status %q", s.Status)
	assert.Equal(t, last.To, s.Status)
	assert.Equal(t, last.ExitCode, s.ExitCode)
	assert.Equal(t, s.Status, inv.Status())
	assert.Equal(t, s.ExitCode, inv.ExitCode())
	assert.False(t, s.FinishedAt.IsZero(), "FinishedAt")
	assert.False(t, s.WorkRunning, "WorkRunning after the work returned")
	assert.False(t, r.workDoneEarly.Load(), "WorkDone closed while the work ran")
	select {
	case <-inv.WorkDone():
	default:
		assert.Fail(t, "WorkDone open after the work returned or could no longer run")
	}

	v, err := inv.Result()
	assert.Equal(t, s.Result, v)
	assertSameError(t, s.Err, err)
	v, err = inv.Wait(context.Background())
	assert.Equal(t, s.Result, v)
	assertSameError(t, s.Err, err)

	assert.LessOrEqual(t, r.workCalls.Load(), int32(1), "work calls")
	assert.LessOrEqual(t, r.cancelCalls.Load(), int32(1), "cancel function calls")
	began := slices.ContainsFunc(s.History, func(tr task.Transition) bool { return tr.To == task.StatusStarted })
	assert.Equal(t, began, r.workCalls.Load() == 1, "the work ran if and only if the run was STARTED")
	stoppedWork := slices.ContainsFunc(s.History, func(tr task.Transition) bool {
		return tr.From == task.StatusStarted && tr.To == task.StatusStopping
	})
	assert.Equal(t, stoppedWork && r.plan.cancel.kind != cancelNone, r.cancelCalls.Load() == 1,
		"the cancel function ran if and only if a started run was cancelled")

	switch s.Status {
	case task.StatusCompleted:
		assert.NoError(t, err)
		assert.Equal(t, r.workValue, v)
	case task.StatusFailed:
		assert.ErrorIs(t, err, task.ErrFailed)
		assert.Zero(t, v)
	case task.StatusStopped:
		assert.ErrorIs(t, err, s.Cause)
		if s.ExitCode == task.ExitTimedOut {
			assert.ErrorIs(t, err, task.ErrTimedOut)
		} else {
			assert.ErrorIs(t, err, task.ErrCanceled)
		}
	case task.StatusUnknown:
		assert.ErrorIs(t, err, s.Cause)
		if s.ExitCode == task.ExitCancelTimedOut {
			assert.ErrorIs(t, err, task.ErrStopTimedOut)
		} else {
			assert.ErrorIs(t, err, task.ErrStopFailed)
		}
	case task.StatusAbandoned:
		assert.ErrorIs(t, err, task.ErrAbandoned)
	}
	if s.Status != task.StatusCompleted {
		assert.Zero(t, v)
	}
	stopping := slices.ContainsFunc(s.History, func(tr task.Transition) bool { return tr.To == task.StatusStopping })
	assert.Equal(t, stopping, s.Cause != nil, "a cause if and only if the run was STOPPING")
}

// notice is the callbacks of the first set for one queued event: a
// transition, an Ignored event or a progress report.
type notice struct {
	records []callbackRecord
	tr      *task.Transition // nil unless the notice is a transition
}

// checkCallbackOrder checks that the callbacks fired once per transition
// of the history, in order, one at a time, each set after the one before
// it, and that Done closed right after the finishing transition's
// callbacks. It returns the notices of the first set.
func checkCallbackOrder(t *rapid.T, r *recorder, s task.Snapshot[int]) []notice {
	r.mu.Lock()
	log := slices.Clone(r.log)
	r.mu.Unlock()
	assert.Zero(t, r.overlaps.Load(), "callbacks that ran at the same time as another")

	// Group the first set's records into notices. A transition's records
	// end with Changed.
	var notices []notice
	var pending []callbackRecord
	for _, rec := range log {
		if rec.set != 0 {
			continue
		}
		switch rec.name {
		case "Ignored", "Progress":
			require.Empty(t, pending, "%s in the middle of a transition's callbacks", rec.name)
			notices = append(notices, notice{records: []callbackRecord{rec}})
		case "Changed":
			tr := rec.tr
			notices = append(notices, notice{records: append(pending, rec), tr: &tr})
			pending = nil
		default:
			pending = append(pending, rec)
		}
	}
	require.Empty(t, pending, "callbacks with no Changed after them")

	// The transitions' callbacks follow the history, one transition each.
	var transitions []notice
	for _, n := range notices {
		if n.tr != nil {
			transitions = append(transitions, n)
		}
	}
	require.Len(t, transitions, len(s.History), "transitions with callbacks")
	for i, n := range transitions {
		tr := s.History[i]
		assert.Equal(t, tr, *n.tr, "Changed of transition %d", i)
		var names []string
		for _, rec := range n.records {
			names = append(names, rec.name)
		}
		assert.Equal(t, wantCallbacks(tr), names, "callbacks of transition %d %+v", i, tr)
		checkCallbackArguments(t, r, s, n)
	}

	// Every set gets the same calls, set by set for each notice.
	var want []callbackRecord
	for _, n := range notices {
		for set := range r.plan.sets {
			for _, rec := range n.records {
				rec.set = set
				want = append(want, rec)
			}
		}
	}
	assert.Equal(t, want, log, "callbacks of all sets, in order")

	// Done closes once, after the callbacks of the first finishing
	// transition and before those of anything later.
	finishing := slices.IndexFunc(notices, func(n notice) bool { return n.tr != nil && n.tr.To.Finished() })
	require.GreaterOrEqual(t, finishing, 0, "a finishing transition")
	for i, n := range notices {
		for _, rec := range n.records {
			assert.Equal(t, i > finishing, rec.doneClosed,
				"Done closed when %s of notice %d began; the run finished at notice %d", rec.name, i, finishing)
		}
	}

	// A panic in a callback is kept, once for each call.
	panics := 0
	for _, rec := range log {
		if rec.set == r.plan.sets-1 && rec.name == r.plan.panicIn {
			panics++
		}
	}
	require.Len(t, s.Panics, panics, "panics kept in the snapshot")
	for _, p := range s.Panics {
		assert.Equal(t, r.panicValue, p.Value)
		assert.NotEmpty(t, p.Stack)
	}
	return notices
}

// checkCallbackArguments checks what a transition's callbacks were given
// against the snapshot of the finished run.
func checkCallbackArguments(t *rapid.T, r *recorder, s task.Snapshot[int], n notice) {
	for _, rec := range n.records {
		switch rec.name {
		case "Completed":
			assert.Equal(t, r.workValue, rec.result)
		case "Cancelling":
			assertSameError(t, s.Cause, rec.err)
		case "Failed", "StopFailed", "Abandoned":
			// The error Wait returned at that transition: the run's error,
			// or the one that a later Abandon wrapped.
			require.Error(t, rec.err, rec.name)
			if n.tr.To == s.Status {
				assertSameError(t, s.Err, rec.err, rec.name)
			} else {
				assert.ErrorIs(t, s.Err, rec.err, rec.name)
			}
		}
		switch rec.name {
		case "Failed":
			assert.ErrorIs(t, rec.err, task.ErrFailed)
		case "StopFailed":
			assert.ErrorIs(t, rec.err, task.ErrStopFailed)
		case "Abandoned":
			assert.ErrorIs(t, rec.err, task.ErrAbandoned)
		}
	}
}

// checkIgnored checks that every event that changed nothing reached
// Ignored in the status it met, and that every event the run produced
// either moved the run or reached Ignored.
func checkIgnored(t *rapid.T, r *recorder, s task.Snapshot[int], notices []notice,
	parentCause error, parentEndedEarly bool) {
	// Each Ignored event meets the status of the transition before it,
	// and the lifecycle rejects it there, unless it is a work return
	// that confirms a stop.
	var ignored []task.Ignored[int]
	var status task.Status
	for _, n := range notices {
		if n.tr != nil {
			status = n.tr.To
			continue
		}
		if n.records[0].name != "Ignored" {
			continue
		}
		ig := n.records[0].ignored
		ignored = append(ignored, ig)
		assert.Equal(t, status, ig.Status, "status met by ignored %s", ig.Event)
		st, ok := lifecycle[cell{ig.Status, ig.Event}]
		assert.True(t, !ok || st.late, "ignored %s in %q, which the lifecycle accepts", ig.Event, ig.Status)
	}

	kept := min(len(ignored), 16)
	assert.Equal(t, ignored[:kept], s.Late, "Snapshot.Late")
	assert.Equal(t, len(ignored)-kept, s.LateOmitted, "Snapshot.LateOmitted")

	// count counts the transitions that event e caused, a cancellation
	// before the work began counting once, and the Ignored events of e.
	count := func(e task.Event, match func(ig task.Ignored[int]) bool) (transitions, ignores int) {
		for _, tr := range s.History {
			secondHop := tr.From == task.StatusStopping &&
				(tr.Event == task.EventCancel || tr.Event == task.EventTimeout)
			if tr.Event == e && !secondHop {
				transitions++
			}
		}
		for _, ig := range ignored {
			if ig.Event == e && (match == nil || match(ig)) {
				ignores++
			}
		}
		return transitions, ignores
	}

	// A rejected call reaches Ignored with its own argument.
	r.mu.Lock()
	calls := slices.Clone(r.calls)
	r.mu.Unlock()
	accepted := map[callerOp]int{}
	progressRejected := 0
	for _, c := range calls {
		if c.ok {
			accepted[c.op]++
			continue
		}
		switch c.op {
		case opCancel, opAbandon:
			e := map[callerOp]task.Event{opCancel: task.EventCancel, opAbandon: task.EventAbandon}[c.op]
			found := slices.ContainsFunc(ignored, func(ig task.Ignored[int]) bool {
				return ig.Event == e && ig.Err == c.arg
			})
			assert.True(t, found, "rejected %s(%v) reached Ignored", e, c.arg)
		case opProgress:
			progressRejected++
		}
	}
	_, progressIgnored := count(task.EventProgress, nil)
	assert.Equal(t, progressRejected, progressIgnored, "rejected progress reports")

	// Exactly one accepted Cancel or parent end per cancel transition.
	cancels, _ := count(task.EventCancel, nil)
	byParent := cancels == 1 && errors.Is(s.Cause, parentCause)
	assert.LessOrEqual(t, accepted[opCancel], 1, "Cancel calls that returned true")
	assert.Equal(t, cancels, accepted[opCancel]+btoi(byParent), "cancel transitions")
	_, parentIgnored := count(task.EventCancel, func(ig task.Ignored[int]) bool { return ig.Err == parentCause })
	switch {
	case parentEndedEarly:
		assert.Equal(t, 1, btoi(byParent)+parentIgnored, "the parent's end reached the run")
	case r.plan.parentEnd == 0:
		// The parent ended long after the run released it.
		assert.Equal(t, 0, btoi(byParent)+parentIgnored, "the parent's end after the run reached it")
	default:
		// The parent ended as the run finished, before or after the run
		// released it.
		assert.LessOrEqual(t, btoi(byParent)+parentIgnored, 1, "the parent's end reached the run")
	}

	abandons, _ := count(task.EventAbandon, nil)
	assert.Equal(t, abandons, accepted[opAbandon], "abandon transitions")

	// The work's end and the cancel function's end each moved the run or
	// reached Ignored, and a return that confirmed a stop did both.
	if r.workCalls.Load() == 1 {
		e := r.workEvent
		var fromStarted, confirmedStop bool
		for _, tr := range s.History {
			fromStarted = fromStarted || tr.Event == e && tr.From == task.StatusStarted
			confirmedStop = confirmedStop || tr.Event == e && tr.From == task.StatusStopping
		}
		_, ig := count(e, nil)
		assert.Equal(t, 1, btoi(fromStarted)+ig, "the work's %s moved the run or reached Ignored", e)
		assert.Equal(t, confirmedStop, ig == 1 && !fromStarted && slices.ContainsFunc(ignored,
			func(ig task.Ignored[int]) bool { return ig.Event == e && ig.Status == task.StatusStopping }),
			"a work return in STOPPING both stops the run and reaches Ignored")
	}
	if r.cancelCalls.Load() == 1 {
		confirms, confirmsIgnored := count(task.EventConfirm, nil)
		fails, failsIgnored := count(task.EventStopFail, nil)
		assert.Equal(t, 1, confirms+confirmsIgnored+fails+failsIgnored,
			"the cancel function's return moved the run or reached Ignored")
	}

	// Timers and the work's goroutine each produce their event once at
	// most, and a zero duration arms no timer.
	timeouts, timeoutsIgnored := count(task.EventTimeout, nil)
	assert.LessOrEqual(t, timeouts+timeoutsIgnored, btoi(r.plan.timeout > 0), "timeout events")
	stopTimeouts, stopTimeoutsIgnored := count(task.EventStopTimeout, nil)
	assert.LessOrEqual(t, stopTimeouts+stopTimeoutsIgnored, btoi(r.plan.stopTimeout > 0), "stop timeout events")
	// A timer fires exactly at its deadline on the bubble's clock, and
	// never after it was stopped. The Timeout timer stops when the run
	// finishes. The StopTimeout timer stops when the cancel function
	// returns, or, without one, when the stop ends. A timer that fires at
	// the instant it is stopped may still arrive.
	stopping, stopEnd := time.Time{}, s.FinishedAt
	for _, tr := range s.History {
		if tr.To == task.StatusStopping {
			stopping = tr.At
		}
		if tr.From == task.StatusStopping && r.plan.cancel.kind == cancelNone {
			stopEnd = tr.At
		}
	}
	if r.plan.cancel.kind != cancelNone {
		for _, tr := range s.History {
			if tr.Event == task.EventConfirm || tr.Event == task.EventStopFail {
				stopEnd = tr.At
			}
		}
		for _, ig := range ignored {
			if ig.Event == task.EventConfirm || ig.Event == task.EventStopFail {
				stopEnd = ig.At
			}
		}
	}
	timerEvents := slices.Clone(ignored)
	for _, tr := range s.History {
		timerEvents = append(timerEvents, task.Ignored[int]{Event: tr.Event, At: tr.At})
	}
	for _, ig := range timerEvents {
		switch ig.Event {
		case task.EventTimeout:
			assert.Equal(t, s.StartedAt.Add(r.plan.timeout), ig.At, "timeout instant")
			assert.False(t, ig.At.After(s.FinishedAt), "timeout at %v after the run finished at %v",
				ig.At, s.FinishedAt)
		case task.EventStopTimeout:
			assert.Equal(t, stopping.Add(r.plan.stopTimeout), ig.At, "stop timeout instant")
			assert.False(t, ig.At.After(stopEnd), "stop timeout at %v after the stop timer stopped at %v",
				ig.At, stopEnd)
		}
	}
	begins, beginsIgnored := count(task.EventBegin, nil)
	assert.LessOrEqual(t, begins+beginsIgnored, 1, "begin events")
}

// checkReaders checks that every read of the invocation, by a caller or a
// callback, saw a moment of the one history: statuses in history order,
// snapshots that are prefixes of it, and results that are its outcome.
func checkReaders(t *rapid.T, r *recorder, s task.Snapshot[int]) {
	position := map[task.Status]int{}
	for i, tr := range s.History {
		position[tr.To] = i
	}
	abandonedLater := s.Status == task.StatusAbandoned && s.History[len(s.History)-1].Event == task.EventAbandon

	r.mu.Lock()
	readers := slices.Clone(r.readers)
	log := slices.Clone(r.log)
	calls := slices.Clone(r.calls)
	r.mu.Unlock()

	for reader, observations := range readers {
		last := -1
		for _, o := range observations {
			if o.waitErr {
				assert.ErrorIs(t, o.err, context.DeadlineExceeded)
				continue
			}
			if o.isResult {
				checkOutcomeRead(t, s, o.value, o.err, abandonedLater)
				continue
			}
			if o.snapshot == nil && o.status == 0 {
				continue // a Result before the run finished
			}
			i, ok := position[o.status]
			require.True(t, ok, "reader %d saw %q, which is not in the history", reader, o.status)
			assert.GreaterOrEqual(t, i, last, "reader %d saw %q after a later status", reader, o.status)
			last = i
			if o.snapshot != nil {
				checkSnapshotRead(t, s, *o.snapshot, abandonedLater)
			}
		}
	}

	// Accepted progress reports reached the callbacks once each, and the
	// snapshot keeps the last one.
	var reported, accepted []int64
	var lastReported task.Progress
	for _, rec := range log {
		if rec.set == 0 && rec.name == "Progress" {
			reported = append(reported, rec.progress.Done)
			lastReported = rec.progress
		}
	}
	for _, c := range calls {
		if c.op == opProgress && c.ok {
			accepted = append(accepted, c.done)
		}
	}
	assert.ElementsMatch(t, accepted, reported, "progress reports")
	assert.Equal(t, lastReported, s.Progress)
}

func checkOutcomeRead(t *rapid.T, s task.Snapshot[int], v int, err error, abandonedLater bool) {
	assert.Equal(t, s.Result, v)
	if err == s.Err {
		return
	}
	// A read before a caller abandoned the run saw the earlier error.
	assert.True(t, abandonedLater, "read error %v, the run's error is %v", err, s.Err)
	assert.ErrorIs(t, s.Err, err)
}

func checkSnapshotRead(t *rapid.T, final, s task.Snapshot[int], abandonedLater bool) {
	require.NoError(t, checkPath(s.History))
	require.NotEmpty(t, s.History)
	require.LessOrEqual(t, len(s.History), len(final.History))
	assert.Equal(t, final.History[:len(s.History)], s.History, "snapshot history is a prefix")

	last := s.History[len(s.History)-1]
	assert.Equal(t, last.To, s.Status)
	assert.Equal(t, last.ExitCode, s.ExitCode)
	assert.Equal(t, final.ID, s.ID)
	assert.Equal(t, final.StartedAt, s.StartedAt)
	if s.Status.Finished() {
		assert.Equal(t, final.FinishedAt, s.FinishedAt)
		checkOutcomeRead(t, final, s.Result, s.Err, abandonedLater)
	} else {
		assert.True(t, s.FinishedAt.IsZero(), "FinishedAt of a run that is %q", s.Status)
		assert.NoError(t, s.Err)
		assert.Zero(t, s.Result)
	}
	if s.Cause != nil {
		assertSameError(t, final.Cause, s.Cause)
	}
}

// assertSameError asserts that got is the error value want, not only an
// equal one, since the package hands the same error to every reader.
func assertSameError(t assert.TestingT, want, got error, msgAndArgs ...any) {
	if want != got {
		assert.Fail(t, fmt.Sprintf("not the same error:\nwant %#v\ngot  %#v", want, got), msgAndArgs...)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
