package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Snapshot is one consistent read of everything about a run, as a plain
// value for a user interface, a log line or a database row. It marshals to
// JSON with errors as their messages, the result only for a
// StatusCompleted run, and a late value only for a late work return; zero
// progress and a false WorkRunning are left out. Unmarshaling restores
// each error from its message. The run's error and cause still match the
// sentinels, such as [ErrCanceled], for the way the run ended, but the
// errors they wrapped are known only by their text.
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

	// Late holds the first events that reached the Ignored callbacks, in
	// order (see [Ignored]), and LateOmitted counts those past the first
	// 16. The Ignored callbacks see every one.
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
	Progress    Progress      `json:"progress,omitzero"`
	StartedAt   time.Time     `json:"started_at"`
	FinishedAt  time.Time     `json:"finished_at,omitzero"`
	History     []Transition  `json:"history"`
	WorkRunning bool          `json:"work_running,omitempty"`
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

// MarshalJSON implements [json.Marshaler]. It writes the JSON the Snapshot
// documentation describes, with snake_case keys, as encoding/json would
// write it. It uses reflection only for the result and late values, since
// a store such as the River runner marshals a snapshot on every write.
func (s Snapshot[T]) MarshalJSON() ([]byte, error) {
	if s.Status >= numStatuses || s.ExitCode >= numExitCodes {
		return nil, fmt.Errorf("task: invalid Snapshot status %v with %v", s.Status, s.ExitCode)
	}
	b := make([]byte, 0, 320+128*len(s.History))
	b = append(b, `{"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"status":"`...)
	b = append(b, s.Status.String()...)
	b = append(b, `","exit_code":"`...)
	b = append(b, exitCodeNames[s.ExitCode]...)
	b = append(b, '"')
	if s.Status == StatusCompleted {
		b = append(b, `,"result":`...)
		var err error
		if b, err = appendValue(b, s.Result); err != nil {
			return nil, fmt.Errorf("task: marshal result: %w", err)
		}
	}
	if text := errorText(s.Err); text != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, text)
	}
	if text := errorText(s.Cause); text != "" {
		b = append(b, `,"cause":`...)
		b = appendString(b, text)
	}
	if s.Progress != (Progress{}) {
		b = append(b, `,"progress":{"done":`...)
		b = strconv.AppendInt(b, s.Progress.Done, 10)
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, s.Progress.Total, 10)
		b = append(b, '}')
	}
	b = append(b, `,"started_at":`...)
	var err error
	if b, err = appendTime(b, s.StartedAt); err != nil {
		return nil, err
	}
	if !s.FinishedAt.IsZero() {
		b = append(b, `,"finished_at":`...)
		if b, err = appendTime(b, s.FinishedAt); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"history":[`...)
	for i, t := range s.History {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = t.appendJSON(b); err != nil {
			return nil, err
		}
	}
	b = append(b, ']')
	if s.WorkRunning {
		b = append(b, `,"work_running":true`...)
	}
	if len(s.Late) > 0 {
		b = append(b, `,"late":[`...)
		for i := range s.Late {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendIgnored(b, &s.Late[i]); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if s.LateOmitted != 0 {
		b = append(b, `,"late_omitted":`...)
		b = strconv.AppendInt(b, int64(s.LateOmitted), 10)
	}
	if len(s.Panics) > 0 {
		b = append(b, `,"panics":[`...)
		for i, p := range s.Panics {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"value":`...)
			b = appendString(b, fmt.Sprint(p.Value))
			b = append(b, `,"stack":`...)
			b = appendString(b, string(p.Stack))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendIgnored appends ig as an ignoredJSON object.
func appendIgnored[T any](b []byte, ig *Ignored[T]) ([]byte, error) {
	if ig.Event == 0 || ig.Event >= numEvents || ig.Status >= numStatuses {
		return nil, fmt.Errorf("task: invalid late event %v in %v", ig.Event, ig.Status)
	}
	b = append(b, `{"event":"`...)
	b = append(b, eventNames[ig.Event]...)
	b = append(b, `","status":"`...)
	b = append(b, ig.Status.String()...)
	b = append(b, '"')
	if ig.Event.fromWork() {
		b = append(b, `,"value":`...)
		var err error
		if b, err = appendValue(b, ig.Value); err != nil {
			return nil, fmt.Errorf("task: marshal late %s value: %w", ig.Event, err)
		}
	}
	if text := errorText(ig.Err); text != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, text)
	}
	b = append(b, `,"at":`...)
	b, err := appendTime(b, ig.At)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendValue appends the JSON of v. A string, the most common result,
// skips the reflection of json.Marshal.
func appendValue[T any](b []byte, v T) ([]byte, error) {
	if s, ok := any(v).(string); ok {
		return appendString(b, s), nil
	}
	return appendMarshaled(b, v)
}

// appendMarshaled appends the JSON of v as json.Marshal writes it through a
// pointer, so that a MarshalJSON or MarshalText method with a pointer
// receiver runs, as it does for a field of type *T. Only this path copies v
// to the heap.
func appendMarshaled[T any](b []byte, v T) ([]byte, error) {
	data, err := json.Marshal(&v)
	if err != nil {
		return nil, err
	}
	return append(b, data...), nil
}

// appendTime appends t as time.Time's MarshalJSON writes it.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if err := checkTime(t); err != nil {
		return nil, err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// checkTime returns an error for a time that RFC 3339 cannot write, which
// time.Time's MarshalJSON rejects too: a year outside [0,9999] or a zone
// offset of 24 hours or more.
func checkTime(t time.Time) error {
	if y := t.Year(); y < 0 || y > 9999 {
		return fmt.Errorf("task: invalid time %v: year outside [0,9999]", t)
	}
	if _, offset := t.Zone(); offset <= -24*60*60 || offset >= 24*60*60 {
		return fmt.Errorf("task: invalid time %v: zone offset of 24 hours or more", t)
	}
	return nil
}

// appendString appends s as a JSON string, escaped as encoding/json escapes
// it: quotes, backslashes and control characters, the HTML characters <, >
// and &, U+2028 and U+2029, and each byte of invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0 // s[start:i] is still to be copied
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// UnmarshalJSON implements [json.Unmarshaler].
func (s *Snapshot[T]) UnmarshalJSON(data []byte) error {
	// The result is decoded on its own, so that an error names its type
	// rather than a field of this package's unexported struct.
	var in struct {
		snapshotJSON[T]
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return fmt.Errorf("task: unmarshal snapshot: %w", err)
	}
	if len(in.Result) > 0 {
		var result T
		if err := json.Unmarshal(in.Result, &result); err != nil {
			return fmt.Errorf("task: unmarshal result of run %q as %T: %w", in.ID, result, err)
		}
		in.snapshotJSON.Result = &result
	}
	*s = Snapshot[T]{
		ID: in.ID, Status: in.Status, ExitCode: in.ExitCode,
		Err:   decodedError(in.Err, outcomeSentinels(in.Status, in.ExitCode, in.History)),
		Cause: decodedError(in.Cause, causeSentinels(stopCode(in.ExitCode, in.History))), Progress: in.Progress,
		StartedAt: in.StartedAt, FinishedAt: in.FinishedAt, History: in.History,
		WorkRunning: in.WorkRunning, LateOmitted: in.LateOmitted,
	}
	if in.snapshotJSON.Result != nil {
		s.Result = *in.snapshotJSON.Result
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
