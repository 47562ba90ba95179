package task_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
)

// The seed corpus of each target is in testdata/fuzz/<target>. Run one
// with, for example, go test -run '^$' -fuzz '^FuzzLifecycle$' -fuzztime 1m.

func FuzzParseStatus(f *testing.F) {
	for _, name := range []string{"", "STARTING", "STARTED", "COMPLETED", "FAILED", "STOPPING",
		"STOPPED", "UNKNOWN", "ABANDONED", "started", "Status(9)", "STARTED ", "\xff"} {
		f.Add(name, uint8(len(name)))
	}
	f.Fuzz(func(t *testing.T, name string, value uint8) {
		s, err := task.ParseStatus(name)
		u := task.StatusStarted
		unmarshalErr := u.UnmarshalText([]byte(name))
		if err != nil {
			assert.Contains(t, err.Error(), strconv.Quote(name), "the error quotes the input")
			assert.Error(t, unmarshalErr)
			assert.Equal(t, task.StatusStarted, u, "a failed UnmarshalText changes nothing")
		} else {
			assert.Equal(t, name, s.String())
			text, err := s.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, name, string(text))
			assert.NoError(t, unmarshalErr)
			assert.Equal(t, s, u)
		}

		// Every value that marshals parses back to itself, and every other
		// value fails to marshal and prints its number.
		v := task.Status(value)
		text, err := v.MarshalText()
		if err != nil {
			assert.Equal(t, fmt.Sprintf("Status(%d)", value), v.String())
			return
		}
		back, err := task.ParseStatus(string(text))
		require.NoError(t, err)
		assert.Equal(t, v, back)
	})
}

func FuzzParseExitCode(f *testing.F) {
	for _, name := range []string{"", "unknown", "completed", "failed", "timedOut", "canceled",
		"cancelFailed", "cancelTimedOut", "cancelled", "TimedOut", "ExitCode(7)", "\x00"} {
		f.Add(name, uint8(len(name)))
	}
	f.Fuzz(func(t *testing.T, name string, value uint8) {
		c, err := task.ParseExitCode(name)
		u := task.ExitCanceled
		unmarshalErr := u.UnmarshalText([]byte(name))
		if err != nil {
			assert.Contains(t, err.Error(), strconv.Quote(name), "the error quotes the input")
			assert.Error(t, unmarshalErr)
			assert.Equal(t, task.ExitCanceled, u, "a failed UnmarshalText changes nothing")
		} else {
			assert.Equal(t, name, c.String())
			text, err := c.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, name, string(text))
			assert.NoError(t, unmarshalErr)
			assert.Equal(t, c, u)
		}

		v := task.ExitCode(value)
		text, err := v.MarshalText()
		if err != nil {
			assert.Equal(t, fmt.Sprintf("ExitCode(%d)", value), v.String())
			return
		}
		back, err := task.ParseExitCode(string(text))
		require.NoError(t, err)
		assert.Equal(t, v, back)
	})
}

func FuzzEventUnmarshalText(f *testing.F) {
	for _, name := range []string{"", "start", "stop_timeout", "progress", "stopTimeout", "Event(14)"} {
		f.Add(name, uint8(len(name)))
	}
	f.Fuzz(func(t *testing.T, name string, value uint8) {
		e := task.EventCancel
		err := e.UnmarshalText([]byte(name))
		if err != nil {
			assert.Contains(t, err.Error(), strconv.Quote(name), "the error quotes the input")
			assert.Equal(t, task.EventCancel, e, "a failed UnmarshalText changes nothing")
		} else {
			assert.Equal(t, name, e.String())
			text, err := e.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, name, string(text))
		}

		v := task.Event(value)
		text, err := v.MarshalText()
		if err != nil {
			assert.Equal(t, fmt.Sprintf("Event(%d)", value), v.String())
			return
		}
		var back task.Event
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, v, back)
	})
}

// The lifecycle target reads its input as a task and a sequence of
// operations and runs them on a real invocation in a testing/synctest
// bubble. After each operation it compares the invocation with a model
// built on the reference table in property_test.go.
//
// The first byte sets the task and how it starts, the next two its
// Timeout and StopTimeout, and each byte after that is one operation.

// Bits of the first input byte.
const (
	withCancelFunc   = 1 << 0 // the task has a cancel function
	cancelWatchesCtx = 1 << 1 // the cancel function returns its context's error when it ends
	workWatchesCtx   = 1 << 2 // the work returns its context's cause when it ends
	startModeShift   = 3      // two bits: how the run starts
)

// How the run starts.
const (
	startPlain         = iota // Start, then the work begins
	startParentEnded          // the parent context has ended before Start
	startCancelInStart        // the STARTING Changed callback calls Cancel
	startInvalid              // the task has a negative Timeout
)

// Operations, one per input byte, taken modulo numOps.
const (
	opsCancel = iota
	opsAbandon
	opsProgress
	opsWorkValue
	opsWorkError
	opsWorkPermanent
	opsWorkPanic
	opsWorkGoexit
	opsCancelConfirm
	opsCancelError
	opsCancelPanic
	opsSleep // for 4, 8, 12 or 16 ms, from the byte's higher bits
	opsEndParent
	numOps
)

// Timeout is 4k+1 ms and StopTimeout 4k+2 ms, and sleeps are whole
// multiples of 4 ms, so that no two timers and no sleep ever fall on the
// same instant. The order of events is then fixed, and the model can
// predict it.
func fuzzTimeout(b byte) time.Duration {
	if k := b % 8; k > 0 {
		return time.Duration(4*k+1) * time.Millisecond
	}
	return 0
}

func fuzzStopTimeout(b byte) time.Duration {
	if k := b % 8; k > 0 {
		return time.Duration(4*k+2) * time.Millisecond
	}
	return 0
}

// lateEvent is an ignored event as the model predicts it.
type lateEvent struct {
	event  task.Event
	status task.Status
}

// lifecycleModel predicts what an invocation does, from the reference table
// and the documented effects of each transition on the work, the cancel
// function, the timers and the parent context.
type lifecycleModel struct {
	status  task.Status
	code    task.ExitCode
	history []task.Transition // without times
	late    []lateEvent

	cancelFunc, cancelWatches, workWatches bool
	stopTimeout                            time.Duration

	workRunning   bool
	cancelRunning bool
	now           time.Duration // since Start
	timeoutAt     time.Duration // 0 when not armed
	stopAt        time.Duration // 0 when not armed
	registered    bool          // with the parent context
}

// fire applies event e and then whatever follows from it at the same
// instant. It reports whether the table accepted e.
func (m *lifecycleModel) fire(e task.Event) bool {
	queue := []task.Event{e}
	accepted := false
	for i := 0; i < len(queue); i++ {
		ok, next := m.apply(queue[i])
		if i == 0 {
			accepted = ok
		}
		queue = append(queue, next...)
	}
	return accepted
}

// apply applies one event and returns the events it causes.
func (m *lifecycleModel) apply(e task.Event) (bool, []task.Event) {
	s, ok := lifecycle[cell{m.status, e}]
	if !ok || s.late {
		m.late = append(m.late, lateEvent{e, m.status})
	}
	if !ok {
		// StopTimeout elapsing after the work confirmed the stop still ends
		// the context of a cancel function that is running.
		if e == task.EventStopTimeout && m.cancelRunning && m.cancelWatches {
			m.cancelRunning = false
			return false, []task.Event{task.EventStopFail}
		}
		return false, nil
	}
	if s.setCode {
		m.code = s.code
	}
	var next []task.Event
	for _, to := range s.to {
		from := m.status
		m.status = to
		m.history = append(m.history, task.Transition{From: from, To: to, Event: e, ExitCode: m.code})
		next = append(next, m.enter(from, to)...)
	}
	return true, next
}

// enter applies the effects of moving from one status to another and
// returns the events they cause.
func (m *lifecycleModel) enter(from, to task.Status) []task.Event {
	var next []task.Event
	if to == task.StatusStopping && from == task.StatusStarted {
		if m.workWatches && m.workRunning {
			m.workRunning = false
			next = append(next, task.EventFail) // the work returns its context's cause
		}
		if m.stopTimeout > 0 {
			m.stopAt = m.now + m.stopTimeout
		}
		m.cancelRunning = m.cancelFunc
	}
	// A stop the work confirmed leaves a running cancel function its
	// context and StopTimeout, so that it can finish its cleanup.
	if from == task.StatusStopping && !(to == task.StatusStopped && m.cancelRunning) {
		m.stopAt = 0
		if m.cancelRunning && m.cancelWatches {
			m.cancelRunning = false
			next = append(next, task.EventStopFail) // the cancel function returns ctx.Err()
		}
	}
	if to.Finished() {
		m.timeoutAt = 0
		m.registered = false
	}
	return next
}

// sleep advances the clock by d, firing the timers that fall due.
func (m *lifecycleModel) sleep(d time.Duration) {
	end := m.now + d
	for {
		at, e := time.Duration(0), task.Event(0)
		if m.timeoutAt > 0 && m.timeoutAt <= end {
			at, e = m.timeoutAt, task.EventTimeout
		}
		if m.stopAt > 0 && m.stopAt <= end && (e == 0 || m.stopAt < at) {
			at, e = m.stopAt, task.EventStopTimeout
		}
		if e == 0 {
			break
		}
		m.now = at
		if e == task.EventTimeout {
			m.timeoutAt = 0
		} else {
			m.stopAt = 0
		}
		m.fire(e)
	}
	m.now = end
}

// fuzzRun is the real side of FuzzLifecycle: an invocation with a work
// and a cancel function that wait for the commands the operations send.
type fuzzRun struct {
	inv        *task.Invocation[int]
	workCmds   chan int // an op code of the work's ending
	cancelCmds chan int // an op code of the cancel function's ending
	endParent  context.CancelCauseFunc
}

var (
	errFuzzWork = errors.New("work failed")
	errFuzzStop = errors.New("cancel failed")
)

func FuzzLifecycle(f *testing.F) {
	f.Add([]byte{0, 0, 0, opsWorkValue})
	f.Add([]byte{withCancelFunc, 2, 1, opsCancel, opsSleep, opsCancelConfirm, opsWorkValue, opsAbandon})
	f.Add([]byte{withCancelFunc | workWatchesCtx | cancelWatchesCtx, 1, 3, opsSleep + 3*numOps, opsWorkError})
	f.Add([]byte{startParentEnded << startModeShift, 1, 1, opsCancel, opsAbandon, opsProgress})
	f.Add([]byte{startInvalid << startModeShift, 0, 0, opsCancel, opsAbandon, opsAbandon})
	f.Add([]byte{withCancelFunc, 0, 2, opsEndParent, opsSleep + numOps, opsWorkPanic, opsAbandon, opsSleep})

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		synctest.Test(t, func(t *testing.T) { checkLifecycleSequence(t, data) })
	})
}

func checkLifecycleSequence(t *testing.T, data []byte) {
	config, timeout, stopTimeout := data[0], fuzzTimeout(data[1]), fuzzStopTimeout(data[2])
	ops := data[3:]
	mode := int(config>>startModeShift) & 3
	m := &lifecycleModel{
		cancelFunc:    config&withCancelFunc != 0,
		cancelWatches: config&cancelWatchesCtx != 0,
		workWatches:   config&workWatchesCtx != 0,
		stopTimeout:   stopTimeout,
	}
	r := startFuzzRun(t, config, timeout, stopTimeout)
	defer r.endParent(nil)

	// What Start does.
	switch mode {
	case startInvalid:
		m.fire(task.EventInvalid)
	default:
		m.fire(task.EventStart)
		if timeout > 0 {
			m.timeoutAt = timeout
		}
		m.registered = mode != startParentEnded
		if mode == startPlain {
			m.fire(task.EventBegin)
			m.workRunning = true
		} else {
			m.fire(task.EventCancel)
		}
	}
	synctest.Wait()
	compareWithModel(t, r.inv, m, "after Start")

	cause := 0
	for i, b := range ops {
		op := int(b) % numOps
		var got, want bool
		checked := true
		switch op {
		case opsCancel:
			cause++
			got = r.inv.Cancel(fmt.Errorf("cause %d", cause))
			want = m.fire(task.EventCancel)
		case opsAbandon:
			got = r.inv.Abandon(errors.New("given up"))
			want = m.fire(task.EventAbandon)
		case opsProgress:
			got = r.inv.ReportProgress(int64(i), int64(len(ops)))
			want = !m.status.Finished()
			if !want {
				m.late = append(m.late, lateEvent{task.EventProgress, m.status})
			}
		case opsWorkValue, opsWorkError, opsWorkPermanent, opsWorkPanic, opsWorkGoexit:
			checked = false
			if !m.workRunning {
				break
			}
			require.True(t, sendCommand(r.workCmds, op), "op %d: the model has the work running", i)
			m.workRunning = false
			m.fire(workEvent(op))
		case opsCancelConfirm, opsCancelError, opsCancelPanic:
			checked = false
			if !m.cancelRunning {
				break
			}
			require.True(t, sendCommand(r.cancelCmds, op), "op %d: the model has the cancel function running", i)
			m.cancelRunning = false
			m.stopAt = 0 // its return disarms StopTimeout
			if op == opsCancelConfirm {
				m.fire(task.EventConfirm)
			} else {
				m.fire(task.EventStopFail)
			}
		case opsSleep:
			checked = false
			d := time.Duration(4*(1+int(b)/numOps%4)) * time.Millisecond
			time.Sleep(d)
			m.sleep(d)
		case opsEndParent:
			checked = false
			r.endParent(errors.New("parent ended"))
			if m.registered {
				m.registered = false
				m.fire(task.EventCancel)
			}
		}
		synctest.Wait()
		if checked {
			require.Equal(t, want, got, "op %d (%d): what the call returned", i, op)
		}
		compareWithModel(t, r.inv, m, fmt.Sprintf("after op %d (%d)", i, op))
	}

	// Let the work and the cancel function return, so that nothing is left
	// running, and check what their late returns did.
	if m.workRunning {
		require.True(t, sendCommand(r.workCmds, opsWorkValue), "the model has the work running")
		m.workRunning = false
		m.fire(task.EventReturn)
		synctest.Wait()
	}
	if m.cancelRunning {
		require.True(t, sendCommand(r.cancelCmds, opsCancelConfirm), "the model has the cancel function running")
		m.cancelRunning = false
		m.fire(task.EventConfirm)
	}
	synctest.Wait()
	compareWithModel(t, r.inv, m, "after the work and cancel function returned")
	assert.Empty(t, libraryGoroutines(), "goroutines of the library left running")
}

// workEvent returns the event of the work ending with op.
func workEvent(op int) task.Event {
	switch op {
	case opsWorkValue:
		return task.EventReturn
	case opsWorkPermanent:
		return task.EventPermanent
	}
	return task.EventFail
}

// sendCommand sends op to a goroutine that waits for it, and reports
// false if none was waiting.
func sendCommand(cmds chan int, op int) bool {
	select {
	case cmds <- op:
		return true
	default:
		return false
	}
}

func startFuzzRun(t *testing.T, config byte, timeout, stopTimeout time.Duration) *fuzzRun {
	r := &fuzzRun{workCmds: make(chan int), cancelCmds: make(chan int)}
	tk := task.Task[int]{
		Work: func(ctx context.Context, _ *task.Invocation[int]) (int, error) {
			var op int
			if config&workWatchesCtx != 0 {
				select {
				case op = <-r.workCmds:
				case <-ctx.Done():
					return 0, context.Cause(ctx)
				}
			} else {
				op = <-r.workCmds
			}
			switch op {
			case opsWorkValue:
				return 1, nil
			case opsWorkError:
				return 0, errFuzzWork
			case opsWorkPermanent:
				return 0, task.Permanent(errFuzzWork)
			case opsWorkPanic:
				panic(errFuzzWork)
			default:
				runtime.Goexit()
				return 0, nil
			}
		},
		Timeout:     timeout,
		StopTimeout: stopTimeout,
	}
	if config&withCancelFunc != 0 {
		tk.Cancel = func(ctx context.Context, _ *task.Invocation[int]) error {
			var op int
			if config&cancelWatchesCtx != 0 {
				select {
				case op = <-r.cancelCmds:
				case <-ctx.Done():
					return ctx.Err()
				}
			} else {
				op = <-r.cancelCmds
			}
			switch op {
			case opsCancelConfirm:
				return nil
			case opsCancelError:
				return errFuzzStop
			default:
				panic(errFuzzStop)
			}
		}
	}

	var parent context.Context
	parent, r.endParent = context.WithCancelCause(context.Background())
	var opts []task.Option
	switch int(config>>startModeShift) & 3 {
	case startParentEnded:
		r.endParent(errors.New("parent ended before Start"))
	case startCancelInStart:
		opts = append(opts, task.WithCallbacks(task.Callbacks[int]{
			Changed: func(inv *task.Invocation[int], tr task.Transition) {
				if tr.To == task.StatusStarting {
					inv.Cancel(errors.New("cancelled in STARTING"))
				}
			},
		}))
	case startInvalid:
		tk.Timeout = -time.Second
	}
	r.inv = tk.Start(parent, opts...)
	return r
}

// compareWithModel checks the invocation against what the model predicts.
func compareWithModel(t *testing.T, inv *task.Invocation[int], m *lifecycleModel, when string) {
	t.Helper()
	s := inv.Snapshot()
	require.NoError(t, checkPath(s.History), when)

	var history []task.Transition
	for _, tr := range s.History {
		tr.At = time.Time{}
		history = append(history, tr)
	}
	require.Equal(t, m.history, history, "history %s", when)
	require.Equal(t, m.status, s.Status, "status %s", when)
	require.Equal(t, m.code, s.ExitCode, "exit code %s", when)
	require.Equal(t, m.workRunning, s.WorkRunning, "WorkRunning %s", when)

	var late []lateEvent
	for _, ig := range s.Late {
		late = append(late, lateEvent{ig.Event, ig.Status})
	}
	kept := min(len(m.late), 16)
	require.Equal(t, m.late[:kept], late, "ignored events %s: %s", when, describeLate(m.late))
	require.Equal(t, len(m.late)-kept, s.LateOmitted, "omitted ignored events %s", when)
}

func describeLate(late []lateEvent) string {
	var b strings.Builder
	for _, l := range late {
		fmt.Fprintf(&b, "%s in %s; ", l.event, l.status)
	}
	return b.String()
}
