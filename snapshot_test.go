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
	"pgregory.net/rapid"
)

// reflectJSON marshals s the slow way: it fills snapshotJSON and lets
// encoding/json reflect over it. Snapshot.MarshalJSON must write the same
// bytes.
func reflectJSON[T any](s Snapshot[T]) ([]byte, error) {
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
			value, err := json.Marshal(&ig.Value)
			if err != nil {
				return nil, err
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

// drawText draws text that JSON must escape with care: any Unicode, bytes
// that are not UTF-8, and the characters encoding/json escapes specially.
func drawText(t *rapid.T, label string) string {
	return rapid.OneOf(
		rapid.String(),
		rapid.Map(rapid.SliceOf(rapid.Byte()), func(b []byte) string { return string(b) }),
		rapid.StringOf(rapid.SampledFrom([]rune{'"', '\\', '<', '>', '&', '\b', '\f', '\n', '\r', '\t',
			0, 0x1f, 0x7f, '\u2028', '\u2029', '\ufffd', 'é', 'a', '/'})),
	).Draw(t, label)
}

func drawTime(t *rapid.T, label string) time.Time {
	sec := rapid.Int64Range(-62135596800, 253402300799-86400).Draw(t, label+" seconds")
	nsec := rapid.Int64Range(0, 999999999).Draw(t, label+" nanoseconds")
	// Offsets of a day or more are not real zones, and RFC 3339 cannot
	// write them: both encoders must reject them.
	zone := time.FixedZone("z", 60*rapid.IntRange(-25*60, 25*60).Draw(t, label+" zone minutes"))
	return time.Unix(sec, nsec).In(zone)
}

func drawError(t *rapid.T, label string) error {
	if rapid.Bool().Draw(t, label+" set") {
		return errors.New(drawText(t, label))
	}
	return nil
}

func drawSnapshot[T any](t *rapid.T, value *rapid.Generator[T]) Snapshot[T] {
	status := rapid.SampledFrom([]Status{0, StatusStarting, StatusStarted, StatusCompleted, StatusFailed,
		StatusStopping, StatusStopped, StatusUnknown, StatusAbandoned}).Draw(t, "status")
	code := ExitCode(rapid.IntRange(0, int(numExitCodes)-1).Draw(t, "exit code"))
	s := Snapshot[T]{
		ID: drawText(t, "id"), Status: status, ExitCode: code,
		Result: value.Draw(t, "result"), Err: drawError(t, "error"), Cause: drawError(t, "cause"),
		Progress:    Progress{Done: rapid.Int64().Draw(t, "done"), Total: rapid.Int64().Draw(t, "total")},
		StartedAt:   drawTime(t, "started"),
		WorkRunning: rapid.Bool().Draw(t, "work running"),
		LateOmitted: rapid.IntRange(0, 100).Draw(t, "late omitted"),
	}
	if rapid.Bool().Draw(t, "finished") {
		s.FinishedAt = drawTime(t, "finished at")
	}
	for range rapid.IntRange(0, 4).Draw(t, "transitions") {
		s.History = append(s.History, Transition{
			From:     Status(rapid.IntRange(0, int(numStatuses)-1).Draw(t, "from")),
			To:       Status(rapid.IntRange(0, int(numStatuses)-1).Draw(t, "to")),
			Event:    Event(rapid.IntRange(1, int(numEvents)-1).Draw(t, "event")),
			ExitCode: ExitCode(rapid.IntRange(0, int(numExitCodes)-1).Draw(t, "transition exit code")),
			At:       drawTime(t, "at"),
		})
	}
	for range rapid.IntRange(0, 3).Draw(t, "late events") {
		s.Late = append(s.Late, Ignored[T]{
			Event:  Event(rapid.IntRange(1, int(numEvents)-1).Draw(t, "late event")),
			Status: Status(rapid.IntRange(0, int(numStatuses)-1).Draw(t, "late status")),
			Value:  value.Draw(t, "late value"),
			Err:    drawError(t, "late error"),
			At:     drawTime(t, "late at"),
		})
	}
	for range rapid.IntRange(0, 2).Draw(t, "panics") {
		s.Panics = append(s.Panics, &PanicError{Value: drawText(t, "panic value"), Stack: []byte(drawText(t, "stack"))})
	}
	return s
}

// pointerJSON marshals through methods with pointer receivers, which
// encoding/json calls only on a value it can take the address of.
type pointerJSON struct{ n int }

func (p *pointerJSON) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf(`{"n":%d}`, p.n)), nil }

func (p *pointerJSON) UnmarshalJSON(data []byte) error {
	var v struct{ N int }
	err := json.Unmarshal(data, &v)
	p.n = v.N
	return err
}

type record struct {
	Name  string            `json:"name"`
	Count int               `json:"count,omitempty"`
	Tags  map[string]string `json:"tags"`
}

func TestSnapshot_MarshalMatchesReflection(t *testing.T) {
	check := func(t *rapid.T, got, want []byte, gotErr, wantErr error) {
		if wantErr != nil {
			require.Error(t, gotErr, "encoding/json failed with %v", wantErr)
			return
		}
		require.NoError(t, gotErr)
		require.Equal(t, string(want), string(got))
	}
	t.Run("string result", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			s := drawSnapshot(t, rapid.Custom(func(t *rapid.T) string { return drawText(t, "text") }))
			want, wantErr := reflectJSON(s)
			got, gotErr := s.MarshalJSON()
			check(t, got, want, gotErr, wantErr)
		})
	})
	t.Run("result with pointer methods", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			s := drawSnapshot(t, rapid.Custom(func(t *rapid.T) pointerJSON {
				return pointerJSON{n: rapid.Int().Draw(t, "n")}
			}))
			want, wantErr := reflectJSON(s)
			got, gotErr := s.MarshalJSON()
			check(t, got, want, gotErr, wantErr)
		})
	})
	t.Run("struct result", func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			s := drawSnapshot(t, rapid.Custom(func(t *rapid.T) record {
				return record{
					Name:  drawText(t, "name"),
					Count: rapid.IntRange(-2, 2).Draw(t, "count"),
					Tags:  rapid.MapOfN(rapid.String(), rapid.String(), 0, 2).Draw(t, "tags"),
				}
			}))
			want, wantErr := reflectJSON(s)
			got, gotErr := s.MarshalJSON()
			check(t, got, want, gotErr, wantErr)
		})
	})
}

func TestSnapshot_PointerMarshalerRoundTrip(t *testing.T) {
	s := Snapshot[pointerJSON]{Status: StatusCompleted, ExitCode: ExitCompleted, Result: pointerJSON{n: 7},
		Late: []Ignored[pointerJSON]{{Event: EventReturn, Status: StatusCompleted, Value: pointerJSON{n: 8}}}}
	data, err := s.MarshalJSON()
	require.NoError(t, err)
	assert.Contains(t, string(data), `"result":{"n":7}`)
	assert.Contains(t, string(data), `"value":{"n":8}`)

	var back Snapshot[pointerJSON]
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, 7, back.Result.n)
	assert.Equal(t, 8, back.Late[0].Value.n)
}

func TestSnapshot_MarshalRejectsWhatJSONCannotHold(t *testing.T) {
	at := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	valid := Snapshot[int]{Status: StatusCompleted, ExitCode: ExitCompleted, StartedAt: at}
	_, err := valid.MarshalJSON()
	require.NoError(t, err)

	cases := []struct {
		name string
		edit func(*Snapshot[int])
		want string
	}{
		{"undefined status", func(s *Snapshot[int]) { s.Status = Status(42) }, "Status(42)"},
		{"undefined exit code", func(s *Snapshot[int]) { s.ExitCode = ExitCode(42) }, "ExitCode(42)"},
		{"start after year 9999", func(s *Snapshot[int]) { s.StartedAt = at.AddDate(8000, 0, 0) }, "10026"},
		{"end before year 0", func(s *Snapshot[int]) { s.FinishedAt = at.AddDate(-2100, 0, 0) }, "-0074"},
		{"zone offset of a day", func(s *Snapshot[int]) { s.StartedAt = at.In(time.FixedZone("x", 25*3600)) }, "+2500"},
		{"transition zone offset of a day", func(s *Snapshot[int]) {
			s.History = []Transition{{To: StatusStarting, Event: EventStart, At: at.In(time.FixedZone("x", -24*3600))}}
		}, "-2400"},
		{"undefined transition event", func(s *Snapshot[int]) {
			s.History = []Transition{{To: StatusStarting, Event: Event(42), At: at}}
		}, "Event(42)"},
		{"undefined late event", func(s *Snapshot[int]) {
			s.Late = []Ignored[int]{{Event: 0, Status: StatusStopped, At: at}}
		}, "Event(0)"},
		{"late time after year 9999", func(s *Snapshot[int]) {
			s.Late = []Ignored[int]{{Event: EventConfirm, Status: StatusStopped, At: at.AddDate(8000, 0, 0)}}
		}, "10026"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := valid
			c.edit(&s)
			_, err := s.MarshalJSON()
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			_, err = json.Marshal(s)
			assert.Error(t, err, "json.Marshal reports the same failure")
		})
	}

	unmarshalable := Snapshot[func()]{Status: StatusCompleted, ExitCode: ExitCompleted, StartedAt: at, Result: func() {}}
	_, err = unmarshalable.MarshalJSON()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "marshal result")
}

// BenchmarkSnapshotJSON marshals the snapshot of a finished three-
// transition run, the record the River runner writes for a short job, by
// reflection over snapshotJSON and by Snapshot.MarshalJSON.
func BenchmarkSnapshotJSON(b *testing.B) {
	inv := Task[string]{Work: func(context.Context, *Invocation[string]) (string, error) {
		return "done", nil
	}}.Start(context.Background(), WithID("12345-1"))
	<-inv.Done()
	s := inv.Snapshot()

	b.Run("marshal=reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reflectJSON(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal=direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.MarshalJSON(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestSnapshot_UnmarshalNamesResultType(t *testing.T) {
	var s Snapshot[int]
	err := json.Unmarshal([]byte(`{"id":"7-1","status":"COMPLETED","exit_code":"completed","result":{"rows":3}}`), &s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `result of run "7-1" as int`)
	assert.NotContains(t, err.Error(), "snapshotJSON", "no unexported type in the message")

	err = json.Unmarshal([]byte(`{"id":"7-1","status":"BOGUS"}`), &s)
	assert.ErrorContains(t, err, `invalid Status "BOGUS"`)
}
