package taskriver

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tasklife/task"
)

func TestRecord_TextRoundTrip(t *testing.T) {
	record := &recordJSON{
		attemptJSON: attemptJSON{Attempt: 3, Worker: "host \"a\"\n<b>\x00é",
			Run: json.RawMessage(`{"id":"7-3","status":"UNKNOWN"}`)},
		Earlier: []attemptJSON{
			{Attempt: 1, Worker: "w1", Run: json.RawMessage(`{"id":"7-1"}`)},
			{Attempt: 2, Worker: "w2", Run: json.RawMessage(`{"id":"7-2"}`)},
		},
	}
	text := record.text()
	require.True(t, json.Valid([]byte(text)), "the text is JSON: %s", text)

	// The text goes through the same marshaling as River's.
	metadata, err := json.Marshal(map[string]any{rivertype.MetadataKeyOutput: text})
	require.NoError(t, err)
	back := readRecord(&rivertype.JobRow{Metadata: metadata})
	require.NotNil(t, back)
	assert.Equal(t, record, back)

	var typed recordJSON
	require.NoError(t, json.Unmarshal([]byte(text), &typed))
	assert.Equal(t, *record, typed, "encoding/json decodes what text writes")
}

func TestReadRecord(t *testing.T) {
	const record = `{"attempt":1,"worker":"w1","run":{"status":"STOPPED"}}`
	asString := strconv.Quote(record) // the record has no byte Go and JSON quote differently
	cases := []struct {
		name     string
		metadata string
		want     bool
	}{
		{"empty", `{}`, false},
		{"other keys", `{"tenant":"a","river:log":[]}`, false},
		{"record", `{"output":` + asString + `}`, true},
		{"key spelled with escapes", `{"\u006futput":` + asString + `}`, true},
		{"record as an object", `{"output":` + record + `}`, false},
		{"output of another shape", `{"output":"{\"rows\":3}"}`, false},
		{"text that is not JSON", `{"output":"done"}`, false},
		{"run that is not an object", `{"output":"{\"run\":null}"}`, false},
		{"metadata that is not JSON", `{"output":`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := readRecord(&rivertype.JobRow{Metadata: []byte(c.metadata)})
			if !c.want {
				assert.Nil(t, got)
				return
			}
			require.NotNil(t, got)
			assert.Equal(t, "w1", got.Worker)
			assert.Equal(t, 1, got.Attempt)
			assert.JSONEq(t, `{"status":"STOPPED"}`, string(got.Run))
		})
	}
}

func TestWithoutValues_BoundsEveryText(t *testing.T) {
	long := strings.Repeat("x", 3*maxFallbackText)
	s := task.Snapshot[string]{ID: "7-1", Status: task.StatusFailed, ExitCode: task.ExitFailed, Result: long,
		Err:   fmt.Errorf("%w: %s", task.ErrFailed, long),
		Cause: errors.New(long),
		Late:  []task.Ignored[string]{{Event: task.EventReturn, Status: task.StatusFailed, Value: long, Err: errors.New(long)}},
	}
	for range 20 {
		s.Panics = append(s.Panics, &task.PanicError{Value: long, Stack: []byte(long)})
	}

	out := withoutValues(s)
	assert.JSONEq(t, "null", string(out.Result))
	assert.JSONEq(t, "null", string(out.Late[0].Value))
	assert.ErrorIs(t, out.Err, task.ErrFailed, "a cut error still matches")
	for _, text := range []string{out.Err.Error(), out.Cause.Error(), out.Late[0].Err.Error()} {
		assert.Less(t, len(text), maxFallbackText+64)
		assert.Contains(t, text, "more bytes)")
	}
	assert.Len(t, out.Panics, 16)
	assert.Less(t, len(out.Panics[0].Stack), maxFallbackText+64)

	record, err := recordOf(1, "w1", nil, out)
	require.NoError(t, err)
	_, err = record.storedText()
	assert.NoError(t, err, "the record fits River's limit")
}

func TestStoredSize(t *testing.T) {
	for _, text := range []string{
		strings.Repeat(`"\\`, maxRecordBytes/5),
		strings.Repeat("<>&\n\t\x01\u2028\u2029é", maxRecordBytes/40),
	} {
		marshaled, err := json.Marshal(text)
		require.NoError(t, err)
		assert.Equal(t, len(marshaled), storedSize(text), "what River measures")
		assert.Greater(t, storedSize(text), maxRecordBytes)
	}

	short := strings.Repeat("<", maxRecordBytes/6-2)
	marshaled, err := json.Marshal(short)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(marshaled), maxRecordBytes, "short text fits however it is escaped")
	assert.LessOrEqual(t, storedSize(short), maxRecordBytes)
}
