package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Snapshot is one consistent read of everything about a run, as a plain
// value for a user interface, a log line or a database row. It marshals to
// JSON with errors as their messages, the result only for a
// StatusCompleted run, and a late value only for a late work return.
// Unmarshaling restores each error from its message. The run's error and
// cause still match the sentinels, such as [ErrCanceled], for the way the
// run ended, but the errors they wrapped are known only by their text.
type Snapshot[T any] struct {
	ID       string
	Status   Status
	ExitCode ExitCode
	Result   T     // the result of a StatusCompleted run
	Err      error // the error Wait returns for a finished run
	Cause    error // the cause of cancellation, once StatusStopping

	Progress   Progress
	StartedAt  time.Time // when Start was called
	FinishedAt time.Time // when the run first finished; zero before
	History    []Transition

	// WorkRunning reports whether the work function is still running. It
	// can be true after the run finished: after StatusUnknown, or after a
	// cancel function confirmed the stop before the work returned.
	WorkRunning bool

	// Late holds the first events that changed nothing, in order, and
	// LateOmitted counts those past the first 16. The Ignored callbacks see
	// every one.
	Late        []Ignored[T]
	LateOmitted int

	// Panics holds the panics recovered from callbacks, in order.
	Panics []*PanicError
}

// Snapshot returns the state of the run at one instant.
func (inv *Invocation[T]) Snapshot() Snapshot[T] {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	s := Snapshot[T]{
		ID:          inv.idLocked(),
		Status:      inv.status,
		ExitCode:    inv.code,
		Cause:       inv.cause,
		Progress:    inv.progress,
		StartedAt:   inv.startedAt,
		WorkRunning: inv.workRunning,
	}
	if inv.finished {
		s.FinishedAt = inv.startedAt.Add(inv.finishedAt)
	}
	s.History = make([]Transition, inv.historyLen)
	for i, st := range inv.history[:inv.historyLen] {
		s.History[i] = inv.transition(st)
	}
	if rare := inv.rare; rare != nil {
		s.Late = append([]Ignored[T](nil), rare.late...)
		s.LateOmitted = rare.lateOmitted
		s.Panics = append([]*PanicError(nil), rare.panics...)
	}
	if inv.status.Finished() {
		s.Result, s.Err = inv.result, inv.err
	}
	return s
}

type snapshotJSON[T any] struct {
	ID          string        `json:"id"`
	Status      Status        `json:"status"`
	ExitCode    ExitCode      `json:"exit_code"`
	Result      *T            `json:"result,omitempty"` // only for StatusCompleted
	Err         string        `json:"error,omitempty"`
	Cause       string        `json:"cause,omitempty"`
	Progress    Progress      `json:"progress"`
	StartedAt   time.Time     `json:"started_at"`
	FinishedAt  time.Time     `json:"finished_at,omitzero"`
	History     []Transition  `json:"history"`
	WorkRunning bool          `json:"work_running"`
	Late        []ignoredJSON `json:"late,omitempty"`
	LateOmitted int           `json:"late_omitted,omitempty"`
	Panics      []panicJSON   `json:"panics,omitempty"`
}

type ignoredJSON struct {
	Event  Event           `json:"event"`
	Status Status          `json:"status"`
	Value  json.RawMessage `json:"value,omitempty"`
	Err    string          `json:"error,omitempty"`
	At     time.Time       `json:"at"`
}

type panicJSON struct {
	Value string `json:"value"`
	Stack string `json:"stack"`
}

// MarshalJSON implements [json.Marshaler].
func (s Snapshot[T]) MarshalJSON() ([]byte, error) {
	out := snapshotJSON[T]{
		ID: s.ID, Status: s.Status, ExitCode: s.ExitCode,
		Err: errorText(s.Err), Cause: errorText(s.Cause), Progress: s.Progress,
		StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, History: s.History,
		WorkRunning: s.WorkRunning, LateOmitted: s.LateOmitted,
	}
	if s.Status == StatusCompleted {
		out.Result = &s.Result
	}
	if out.History == nil {
		out.History = []Transition{}
	}
	for _, ig := range s.Late {
		late := ignoredJSON{Event: ig.Event, Status: ig.Status, Err: errorText(ig.Err), At: ig.At}
		if ig.Event.fromWork() {
			value, err := json.Marshal(ig.Value)
			if err != nil {
				return nil, fmt.Errorf("task: marshal late %s value: %w", ig.Event, err)
			}
			late.Value = value
		}
		out.Late = append(out.Late, late)
	}
	for _, p := range s.Panics {
		out.Panics = append(out.Panics, panicJSON{Value: fmt.Sprint(p.Value), Stack: string(p.Stack)})
	}
	return json.Marshal(out)
}

// UnmarshalJSON implements [json.Unmarshaler].
func (s *Snapshot[T]) UnmarshalJSON(data []byte) error {
	var in snapshotJSON[T]
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	*s = Snapshot[T]{
		ID: in.ID, Status: in.Status, ExitCode: in.ExitCode,
		Err:   decodedError(in.Err, outcomeSentinels(in.Status, in.ExitCode, in.History)),
		Cause: decodedError(in.Cause, causeSentinels(stopCode(in.ExitCode, in.History))), Progress: in.Progress,
		StartedAt: in.StartedAt, FinishedAt: in.FinishedAt, History: in.History,
		WorkRunning: in.WorkRunning, LateOmitted: in.LateOmitted,
	}
	if in.Result != nil {
		s.Result = *in.Result
	}
	for _, ig := range in.Late {
		late := Ignored[T]{Event: ig.Event, Status: ig.Status, Err: textError(ig.Err), At: ig.At}
		if len(ig.Value) > 0 {
			if err := json.Unmarshal(ig.Value, &late.Value); err != nil {
				return fmt.Errorf("task: unmarshal late %s value: %w", ig.Event, err)
			}
		}
		s.Late = append(s.Late, late)
	}
	for _, p := range in.Panics {
		s.Panics = append(s.Panics, &PanicError{Value: p.Value, Stack: []byte(p.Stack)})
	}
	return nil
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func textError(text string) error {
	if text == "" {
		return nil
	}
	return errors.New(text)
}

// sentinelError is an error restored from its message, which still
// matches the sentinels of the outcome it came from.
type sentinelError struct {
	msg       string
	sentinels []error
}

func (e *sentinelError) Error() string   { return e.msg }
func (e *sentinelError) Unwrap() []error { return e.sentinels }

func decodedError(text string, sentinels []error) error {
	if text == "" {
		return nil
	}
	if len(sentinels) == 0 {
		return errors.New(text)
	}
	return &sentinelError{msg: text, sentinels: sentinels}
}

// stopCode returns the exit code a run had when cancellation began, or
// ExitUnknown if it never did.
func stopCode(code ExitCode, history []Transition) ExitCode {
	for _, tr := range history {
		if tr.To == StatusStopping {
			return tr.ExitCode
		}
	}
	return ExitUnknown
}

func causeSentinels(code ExitCode) []error {
	switch code {
	case ExitCanceled:
		return []error{ErrCanceled}
	case ExitTimedOut:
		return []error{ErrTimedOut}
	}
	return nil
}

// outcomeSentinels returns the sentinels that the error of a run with
// this status, exit code and history matches, as Wait returns it.
func outcomeSentinels(status Status, code ExitCode, history []Transition) []error {
	var sentinels []error
	if status == StatusAbandoned {
		sentinels = append(sentinels, ErrAbandoned)
		if len(history) < 2 || history[len(history)-2].To == StatusStarted {
			return sentinels // Permanent: no earlier outcome
		}
		status = history[len(history)-2].To // abandoned later: the earlier outcome
	}
	switch status {
	case StatusFailed:
		sentinels = append(sentinels, ErrFailed)
		if len(history) > 0 && history[0].Event == EventInvalid {
			sentinels = append(sentinels, ErrInvalid)
		}
	case StatusStopped:
		sentinels = append(sentinels, causeSentinels(code)...)
	case StatusUnknown:
		if code == ExitCancelFailed {
			sentinels = append(sentinels, ErrStopFailed)
		} else {
			sentinels = append(sentinels, ErrStopTimedOut)
		}
		sentinels = append(sentinels, causeSentinels(stopCode(code, history))...)
	}
	return sentinels
}
