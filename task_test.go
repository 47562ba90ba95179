package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// want is one row of the transition table as the lifecycle documentation
// states it, written out apart from the table under test.
type want struct {
	to      Status // final status; zero means the event is ignored
	code    ExitCode
	path    []Status // statuses passed through on the way, if more than one
	ignored bool     // the event also reaches Ignored, as a late work return does
}

var documentedTable = map[Status]map[Event]want{
	0: {
		EventStart:   {to: StatusStarting, code: ExitUnknown},
		EventInvalid: {to: StatusFailed, code: ExitFailed},
	},
	StatusStarting: {
		EventBegin:   {to: StatusStarted, code: ExitUnknown},
		EventCancel:  {to: StatusStopped, code: ExitCanceled, path: []Status{StatusStopping, StatusStopped}},
		EventTimeout: {to: StatusStopped, code: ExitTimedOut, path: []Status{StatusStopping, StatusStopped}},
	},
	StatusStarted: {
		EventReturn:    {to: StatusCompleted, code: ExitCompleted},
		EventFail:      {to: StatusFailed, code: ExitFailed},
		EventPermanent: {to: StatusAbandoned, code: ExitFailed},
		EventCancel:    {to: StatusStopping, code: ExitCanceled},
		EventTimeout:   {to: StatusStopping, code: ExitTimedOut},
	},
	StatusStopping: {
		EventConfirm:     {to: StatusStopped, code: ExitCanceled},
		EventReturn:      {to: StatusStopped, code: ExitCanceled, ignored: true},
		EventFail:        {to: StatusStopped, code: ExitCanceled, ignored: true},
		EventPermanent:   {to: StatusStopped, code: ExitCanceled, ignored: true},
		EventStopFail:    {to: StatusUnknown, code: ExitCancelFailed},
		EventStopTimeout: {to: StatusUnknown, code: ExitCancelTimedOut},
	},
	StatusFailed:  {EventAbandon: {to: StatusAbandoned, code: ExitFailed}},
	StatusStopped: {EventAbandon: {to: StatusAbandoned, code: ExitCanceled}},
	StatusUnknown: {EventAbandon: {to: StatusAbandoned, code: ExitCancelFailed}},
}

// codeIn is the exit code a run plausibly has in each status before the
// event under test.
var codeIn = map[Status]ExitCode{
	StatusStopping:  ExitCanceled,
	StatusCompleted: ExitCompleted,
	StatusFailed:    ExitFailed,
	StatusStopped:   ExitCanceled,
	StatusUnknown:   ExitCancelFailed,
	StatusAbandoned: ExitFailed,
}

// invocationIn returns an invocation put straight into status s, with a
// recorder of its transitions and ignored events. Its task has no cancel
// function, so no goroutine starts.
func invocationIn(t *testing.T, s Status) (*Invocation[int], *[]Transition, *[]Ignored[int]) {
	t.Helper()
	var changes []Transition
	var ignored []Ignored[int]
	inv := &Invocation[int]{
		task:   Task[int]{Work: func(context.Context, *Invocation[int]) (int, error) { return 0, nil }},
		done:   make(chan struct{}),
		parent: context.Background(),
		callbacks: []*Callbacks[int]{{
			Changed: func(_ *Invocation[int], tr Transition) { changes = append(changes, tr) },
			Ignored: func(_ *Invocation[int], e Ignored[int]) { ignored = append(ignored, e) },
		}},
	}
	inv.ctx, inv.cancelWork = context.WithCancelCause(context.Background())
	t.Cleanup(func() { inv.cancelWork(nil) })
	inv.status, inv.code = s, codeIn[s]
	if s.Finished() {
		inv.finished, inv.finishedAt = true, 1
		inv.err = errors.New("earlier error")
	}
	return inv, &changes, &ignored
}

func TestTable_EveryStatusAndEvent(t *testing.T) {
	for s := Status(0); s < numStatuses; s++ {
		for e := EventStart; e < numEvents; e++ {
			if e == EventProgress {
				continue // not a transition; see TestInvocation_ReportProgress
			}
			w, accepted := documentedTable[s][e]
			t.Run(fmt.Sprintf("%v %v", s, e), func(t *testing.T) {
				inv, changes, ignored := invocationIn(t, s)
				inv.mu.Lock()
				ok := inv.fireLocked(e, 7, errors.New("payload"))
				inv.mu.Unlock()
				inv.deliver()

				require.Equal(t, accepted, ok, "accepted")
				if !accepted {
					assert.Equal(t, s, inv.Status(), "status unchanged")
					assert.Equal(t, codeIn[s], inv.ExitCode(), "exit code unchanged")
					assert.Empty(t, *changes, "transitions")
					require.Len(t, *ignored, 1, "ignored events")
					assert.Equal(t, e, (*ignored)[0].Event)
					assert.Equal(t, s, (*ignored)[0].Status)
					return
				}
				assert.Equal(t, w.to, inv.Status(), "status")
				assert.Equal(t, w.code, inv.ExitCode(), "exit code")
				path := w.path
				if path == nil {
					path = []Status{w.to}
				}
				var got []Status
				for _, tr := range *changes {
					got = append(got, tr.To)
					assert.Equal(t, e, tr.Event, "event of transition to %v", tr.To)
				}
				assert.Equal(t, path, got, "transitions")
				if w.ignored {
					require.Len(t, *ignored, 1, "ignored events")
					assert.Equal(t, 7, (*ignored)[0].Value)
				} else {
					assert.Empty(t, *ignored, "ignored events")
				}
			})
		}
	}
}

func TestTable_NoRuleForUndefinedValues(t *testing.T) {
	_, ok := next(numStatuses, EventStart)
	assert.False(t, ok, "undefined status")
	_, ok = next(StatusStarted, numEvents)
	assert.False(t, ok, "undefined event")
}

func TestTable_HistoryFitsLongestPath(t *testing.T) {
	// Walk every accepted path from the zero status and check that the
	// fixed-size history can hold it.
	var longest int
	var walk func(s Status, depth int)
	walk = func(s Status, depth int) {
		longest = max(longest, depth)
		for e := EventStart; e < numEvents; e++ {
			if r, ok := next(s, e); ok {
				steps := 1
				to := r.to
				if r.then != 0 {
					steps, to = 2, r.then
				}
				walk(to, depth+steps)
			}
		}
	}
	walk(0, 0)
	assert.Equal(t, maxHistory, longest)
}

func TestStatus_Text(t *testing.T) {
	names := map[Status]string{
		0:               "",
		StatusStarting:  "STARTING",
		StatusStarted:   "STARTED",
		StatusCompleted: "COMPLETED",
		StatusFailed:    "FAILED",
		StatusStopping:  "STOPPING",
		StatusStopped:   "STOPPED",
		StatusUnknown:   "UNKNOWN",
		StatusAbandoned: "ABANDONED",
	}
	for s, name := range names {
		t.Run("round trip "+name, func(t *testing.T) {
			assert.Equal(t, name, s.String())
			text, err := s.MarshalText()
			require.NoError(t, err)
			var back Status
			require.NoError(t, back.UnmarshalText(text))
			assert.Equal(t, s, back)
		})
	}
	t.Run("unknown spelling names it", func(t *testing.T) {
		var s Status
		err := s.UnmarshalText([]byte("started"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"started"`)
	})
	t.Run("undefined value fails to marshal", func(t *testing.T) {
		_, err := Status(99).MarshalText()
		require.Error(t, err)
		assert.Equal(t, "Status(99)", Status(99).String())
	})
	t.Run("finished statuses", func(t *testing.T) {
		for s := Status(0); s < numStatuses; s++ {
			want := s == StatusCompleted || s == StatusFailed || s == StatusStopped ||
				s == StatusUnknown || s == StatusAbandoned
			assert.Equal(t, want, s.Finished(), "%v", s)
		}
	})
}

func TestExitCode_Text(t *testing.T) {
	names := map[ExitCode]string{
		ExitUnknown:        "unknown",
		ExitCompleted:      "completed",
		ExitFailed:         "failed",
		ExitTimedOut:       "timedOut",
		ExitCanceled:       "canceled",
		ExitCancelFailed:   "cancelFailed",
		ExitCancelTimedOut: "cancelTimedOut",
	}
	for c, name := range names {
		t.Run("round trip "+name, func(t *testing.T) {
			assert.Equal(t, name, c.String())
			data, err := json.Marshal(c)
			require.NoError(t, err)
			assert.JSONEq(t, `"`+name+`"`, string(data))
			var back ExitCode
			require.NoError(t, json.Unmarshal(data, &back))
			assert.Equal(t, c, back)
		})
	}
	t.Run("unknown spelling names it", func(t *testing.T) {
		_, err := ParseExitCode("timed_out")
		require.Error(t, err)
		assert.Contains(t, err.Error(), `"timed_out"`)
	})
	t.Run("empty spelling rejected", func(t *testing.T) {
		_, err := ParseExitCode("")
		assert.Error(t, err)
	})
	t.Run("undefined value fails to marshal", func(t *testing.T) {
		_, err := ExitCode(42).MarshalText()
		assert.Error(t, err)
	})
}

func TestEvent_Text(t *testing.T) {
	for e := EventStart; e < numEvents; e++ {
		text, err := e.MarshalText()
		require.NoError(t, err, "%d", e)
		var back Event
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, e, back)
	}
	var e Event
	err := e.UnmarshalText([]byte("finish"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"finish"`)
	_, err = Event(0).MarshalText()
	assert.Error(t, err)
}

func TestTask_Validate(t *testing.T) {
	work := func(context.Context, *Invocation[int]) (int, error) { return 1, nil }
	cases := []struct {
		name string
		task Task[int]
		want string // substring of the error; empty for a valid task
	}{
		{"valid with zero limits", Task[int]{Work: work}, ""},
		{"nil work", Task[int]{}, "Work: nil"},
		{"negative timeout", Task[int]{Work: work, Timeout: -1}, "Timeout -1ns"},
		{"negative stop timeout", Task[int]{Work: work, StopTimeout: -2}, "StopTimeout -2ns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.task.Validate()
			if c.want == "" {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestFunc_NilStaysNil(t *testing.T) {
	assert.Nil(t, Func[int](nil))
}

func TestPermanent_Nil(t *testing.T) {
	assert.NoError(t, Permanent(nil))
}

func TestSnapshot_JSONResultOnlyWhenCompleted(t *testing.T) {
	completed := Snapshot[int]{Status: StatusCompleted, Result: 0}
	data, err := json.Marshal(completed)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"result":0`, "a zero result of a completed run is kept")

	stopped := Snapshot[int]{Status: StatusStopped, Late: []Ignored[int]{
		{Event: EventConfirm, Status: StatusStopped},
		{Event: EventReturn, Status: StatusStopped, Value: 5},
	}}
	data, err = json.Marshal(stopped)
	require.NoError(t, err)
	assert.NotContains(t, string(data), `"result"`)
	assert.Contains(t, string(data), `"event":"confirm","status":"STOPPED","at"`, "no value for the cancel function")
	assert.Contains(t, string(data), `"value":5`)

	var back Snapshot[int]
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, 5, back.Late[1].Value)
}

func TestPermanent_FoundAnywhereInChain(t *testing.T) {
	base := errors.New("bad record")
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"plain error", base, false},
		{"permanent", Permanent(base), true},
		{"wrapped permanent", fmt.Errorf("step 2: %w", Permanent(base)), true},
		{"joined permanent", errors.Join(errors.New("other"), Permanent(base)), true},
		{"joined plain", errors.Join(errors.New("other"), base), false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, isPermanent(c.err))
		})
	}
	assert.ErrorIs(t, Permanent(base), base, "Permanent keeps the chain")
}

func TestSnapshot_DecodedErrorsKeepSentinels(t *testing.T) {
	step := func(to Status, e Event, code ExitCode) Transition {
		return Transition{To: to, Event: e, ExitCode: code}
	}
	started := []Transition{step(StatusStarting, EventStart, ExitUnknown), step(StatusStarted, EventBegin, ExitUnknown)}
	cases := []struct {
		name    string
		status  Status
		code    ExitCode
		history []Transition
		want    []error
		notWant []error
	}{
		{"failed", StatusFailed, ExitFailed, append(started, step(StatusFailed, EventFail, ExitFailed)),
			[]error{ErrFailed}, []error{ErrInvalid}},
		{"invalid", StatusFailed, ExitFailed, []Transition{step(StatusFailed, EventInvalid, ExitFailed)},
			[]error{ErrFailed, ErrInvalid}, nil},
		{"timed out", StatusStopped, ExitTimedOut, append(started, step(StatusStopping, EventTimeout, ExitTimedOut),
			step(StatusStopped, EventFail, ExitTimedOut)), []error{ErrTimedOut}, []error{ErrCanceled}},
		{"stop failed after cancel", StatusUnknown, ExitCancelFailed, append(started,
			step(StatusStopping, EventCancel, ExitCanceled), step(StatusUnknown, EventStopFail, ExitCancelFailed)),
			[]error{ErrStopFailed, ErrCanceled}, []error{ErrStopTimedOut}},
		{"permanent", StatusAbandoned, ExitFailed, append(started, step(StatusAbandoned, EventPermanent, ExitFailed)),
			[]error{ErrAbandoned}, []error{ErrFailed}},
		{"abandoned after failure", StatusAbandoned, ExitFailed, append(started,
			step(StatusFailed, EventFail, ExitFailed), step(StatusAbandoned, EventAbandon, ExitFailed)),
			[]error{ErrAbandoned, ErrFailed}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := json.Marshal(Snapshot[int]{Status: c.status, ExitCode: c.code, History: c.history,
				Err: errors.New("the message")})
			require.NoError(t, err)
			var back Snapshot[int]
			require.NoError(t, json.Unmarshal(data, &back))
			assert.Equal(t, "the message", back.Err.Error())
			for _, w := range c.want {
				assert.ErrorIs(t, back.Err, w)
			}
			for _, w := range c.notWant {
				assert.NotErrorIs(t, back.Err, w)
			}
		})
	}
}

func TestTransition_JSONMatchesFieldTags(t *testing.T) {
	// plain has the same fields and tags as Transition and no methods, so
	// encoding/json marshals it by reflection.
	type plain Transition
	at := time.Date(2026, 12, 4, 17, 3, 4, 5, time.FixedZone("x", 3600))
	for _, tr := range []Transition{
		{From: 0, To: StatusStarting, Event: EventStart, ExitCode: ExitUnknown, At: at},
		{From: StatusStopping, To: StatusUnknown, Event: EventStopTimeout, ExitCode: ExitCancelTimedOut, At: at.UTC()},
	} {
		got, err := json.Marshal(tr)
		require.NoError(t, err)
		want, err := json.Marshal(plain(tr))
		require.NoError(t, err)
		assert.JSONEq(t, string(want), string(got))

		var back Transition
		require.NoError(t, json.Unmarshal(got, &back))
		assert.True(t, tr.At.Equal(back.At), "time round trip")
		back.At = tr.At
		assert.Equal(t, tr, back)
	}
	_, err := json.Marshal(Transition{To: Status(42), Event: EventStart})
	assert.Error(t, err, "undefined status")
}
