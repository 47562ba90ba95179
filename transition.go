package task

import (
	"fmt"
	"time"
)

// Event is something that happens to a run: a call, a return or a timer.
// The transition table decides what each event does in each [Status]; an
// event the table rejects changes nothing and reaches the
// [Callbacks.Ignored] callback.
type Event uint8

const (
	// EventStart is [Task.Start] accepting a valid run.
	EventStart Event = iota + 1
	// EventInvalid is [Task.Start] rejecting an invalid task or context.
	EventInvalid
	// EventBegin is the work's goroutine about to call the work function.
	// It is rejected, and the work never runs, when the run was cancelled
	// or timed out after Start returned but before the goroutine began.
	EventBegin
	// EventReturn is the work function returning a nil error.
	EventReturn
	// EventFail is the work function returning an error, panicking, or
	// exiting without returning.
	EventFail
	// EventPermanent is the work function returning an error wrapped by
	// [Permanent].
	EventPermanent
	// EventCancel is a call of [Invocation.Cancel], or the end of the
	// parent context.
	EventCancel
	// EventTimeout is Timeout elapsing.
	EventTimeout
	// EventConfirm is the cancel function returning nil.
	EventConfirm
	// EventStopFail is the cancel function returning an error or
	// panicking.
	EventStopFail
	// EventStopTimeout is StopTimeout elapsing.
	EventStopTimeout
	// EventAbandon is a call of [Invocation.Abandon].
	EventAbandon
	// EventProgress is a call of [Invocation.ReportProgress]. It never
	// changes the status, and it is rejected once the run has finished.
	EventProgress

	numEvents = iota + 1
)

var eventNames = [numEvents]string{
	EventStart:       "start",
	EventInvalid:     "invalid",
	EventBegin:       "begin",
	EventReturn:      "return",
	EventFail:        "fail",
	EventPermanent:   "permanent",
	EventCancel:      "cancel",
	EventTimeout:     "timeout",
	EventConfirm:     "confirm",
	EventStopFail:    "stop_fail",
	EventStopTimeout: "stop_timeout",
	EventAbandon:     "abandon",
	EventProgress:    "progress",
}

// String returns the snake_case name of e, such as "stop_timeout".
func (e Event) String() string {
	if e > 0 && e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}

// MarshalText implements [encoding.TextMarshaler] with the spelling of
// [Event.String]. It fails for an undefined value.
func (e Event) MarshalText() ([]byte, error) {
	if e == 0 || e >= numEvents {
		return nil, fmt.Errorf("task: invalid Event %d", uint8(e))
	}
	return []byte(eventNames[e]), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler]. It accepts the
// spellings of [Event.String].
func (e *Event) UnmarshalText(text []byte) error {
	for v := EventStart; v < numEvents; v++ {
		if eventNames[v] == string(text) {
			*e = v
			return nil
		}
	}
	return fmt.Errorf("task: invalid Event %q", text)
}

// Transition is one change of status, as the history of a run records it.
// Its JSON leaves out the zero From of the first transition and the
// ExitUnknown exit code of a run that has not ended.
type Transition struct {
	From     Status    `json:"from,omitempty"` // zero for the first transition
	To       Status    `json:"to"`
	Event    Event     `json:"event"`
	ExitCode ExitCode  `json:"exit_code,omitempty"` // the exit code after the change
	At       time.Time `json:"at"`
}

// fromWork reports whether e is the work function's return, whose value
// means something.
func (e Event) fromWork() bool {
	return e == EventReturn || e == EventFail || e == EventPermanent
}

// step is a Transition as an invocation stores it, with its time as an
// offset from Start, which takes half the space of a time.Time.
type step struct {
	from, to Status
	event    Event
	code     ExitCode
	at       time.Duration
}

// rule is one cell of the transition table.
type rule struct {
	to      Status
	code    ExitCode // set when setCode is true; otherwise the exit code is kept
	setCode bool
	// then is a second status that follows at once, for the same event.
	then Status
	// late marks a work return that confirms a stop: its value or error is
	// not the run's outcome, so it also reaches the Ignored callback.
	late bool
}

// maxHistory is the length of the longest path through the table:
// STARTING, STARTED, STOPPING, UNKNOWN, ABANDONED.
const maxHistory = 5

// table is the transition table, indexed by the current status (zero
// before the first transition) and the event. A zero rule rejects the
// event. Nothing else decides a status.
var table = func() (t [numStatuses][numEvents]rule) {
	set := func(to Status, code ExitCode) rule { return rule{to: to, code: code, setCode: true} }
	keep := func(to Status) rule { return rule{to: to} }

	t[0][EventStart] = set(StatusStarting, ExitUnknown)
	t[0][EventInvalid] = set(StatusFailed, ExitFailed)

	t[StatusStarting][EventBegin] = keep(StatusStarted)
	// Cancelled before the work began: there is nothing to stop.
	t[StatusStarting][EventCancel] = rule{to: StatusStopping, code: ExitCanceled,
		setCode: true, then: StatusStopped}
	t[StatusStarting][EventTimeout] = rule{to: StatusStopping, code: ExitTimedOut,
		setCode: true, then: StatusStopped}

	t[StatusStarted][EventReturn] = set(StatusCompleted, ExitCompleted)
	t[StatusStarted][EventFail] = set(StatusFailed, ExitFailed)
	t[StatusStarted][EventPermanent] = set(StatusAbandoned, ExitFailed)
	t[StatusStarted][EventCancel] = set(StatusStopping, ExitCanceled)
	t[StatusStarted][EventTimeout] = set(StatusStopping, ExitTimedOut)

	t[StatusStopping][EventConfirm] = keep(StatusStopped)
	for _, e := range []Event{EventReturn, EventFail, EventPermanent} {
		t[StatusStopping][e] = rule{to: StatusStopped, late: true}
	}
	t[StatusStopping][EventStopFail] = set(StatusUnknown, ExitCancelFailed)
	t[StatusStopping][EventStopTimeout] = set(StatusUnknown, ExitCancelTimedOut)

	for _, s := range []Status{StatusFailed, StatusStopped, StatusUnknown} {
		t[s][EventAbandon] = keep(StatusAbandoned)
	}
	return t
}()

// next returns the rule for event e in status s, and false if the table
// rejects e.
func next(s Status, e Event) (rule, bool) {
	if s >= numStatuses || e >= numEvents {
		return rule{}, false
	}
	r := table[s][e]
	return r, r.to != 0
}

// MarshalJSON implements [json.Marshaler]. It writes the object that the
// field tags describe without reflection, since every write of a run's
// record marshals its whole history.
func (t Transition) MarshalJSON() ([]byte, error) {
	return t.appendJSON(make([]byte, 0, 112))
}

// appendJSON appends the JSON object of t to b.
func (t Transition) appendJSON(b []byte) ([]byte, error) {
	if t.From >= numStatuses || t.To >= numStatuses || t.ExitCode >= numExitCodes ||
		t.Event == 0 || t.Event >= numEvents {
		return nil, fmt.Errorf("task: invalid Transition %v -> %v on %v with %v",
			t.From, t.To, t.Event, t.ExitCode)
	}
	if err := checkTime(t.At); err != nil {
		return nil, fmt.Errorf("task: invalid Transition: %w", err)
	}
	// The names need no escaping: they are ASCII letters and underscores.
	b = append(b, '{')
	if t.From != 0 {
		b = append(b, `"from":"`...)
		b = append(b, t.From.String()...)
		b = append(b, `",`...)
	}
	b = append(b, `"to":"`...)
	b = append(b, t.To.String()...)
	b = append(b, `","event":"`...)
	b = append(b, eventNames[t.Event]...)
	if t.ExitCode != ExitUnknown {
		b = append(b, `","exit_code":"`...)
		b = append(b, exitCodeNames[t.ExitCode]...)
	}
	b = append(b, `","at":"`...)
	b = t.At.AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), nil
}
