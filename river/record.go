package taskriver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/riverqueue/river/rivertype"

	"github.com/tasklife/task"
)

// maxRecordBytes bounds a record as River measures output: the length of
// the JSON string that holds its text. It is the limit that
// river.RecordOutput and river.JobUpdate put on output (32 MiB in River
// v0.51.2). The final record bypasses their check, and a larger one can
// fail River's update of the attempt, which leaves the job running until
// River's rescuer finds it.
const maxRecordBytes = 32 << 20

// recordJSON is the record the worker writes under the "output" key of the
// job's metadata: the current attempt and the last record of each earlier
// one.
//
// The worker stores the record's JSON text as one JSON string, not as a
// nested object. River indexes the metadata column with a GIN index, which
// gets an entry for every key and scalar value of a nested object. In
// this module's benchmark each entry cost PostgreSQL roughly 3 µs of CPU
// per job, an estimate from three paired runs. The eleven entries of a
// record stored as an object made the server's CPU time per job about 20%
// higher than plain River's. As a string, a record adds two entries. SQL
// reads it by decoding the string, as in
// (metadata->>'output')::jsonb->'run'->>'status'.
type recordJSON struct {
	attemptJSON
	Earlier []attemptJSON `json:"earlier,omitempty"`
}

// attemptJSON is the record of one attempt. Run is the task.Snapshot, as
// Snapshot.MarshalJSON wrote it or as json.Unmarshal checked it, so it is
// valid JSON.
type attemptJSON struct {
	Attempt int             `json:"attempt"`
	Worker  string          `json:"worker"`
	Run     json.RawMessage `json:"run"`
}

// text returns the JSON text of r, which the worker stores as a string. It
// writes the fields itself: json.Marshal would compact every Run again.
func (r *recordJSON) text() string {
	size := 64 + len(r.Worker) + len(r.Run)
	for _, a := range r.Earlier {
		size += 48 + len(a.Worker) + len(a.Run)
	}
	var b strings.Builder
	b.Grow(size)
	b.WriteByte('{')
	r.attemptJSON.writeFields(&b)
	if len(r.Earlier) > 0 {
		b.WriteString(`,"earlier":[`)
		for i, a := range r.Earlier {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('{')
			a.writeFields(&b)
			b.WriteByte('}')
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

// storedText returns the text of r, or an error if River would measure it
// as larger than maxRecordBytes.
func (r *recordJSON) storedText() (string, error) {
	text := r.text()
	if size := storedSize(text); size > maxRecordBytes {
		return "", fmt.Errorf("record of attempt %d takes %d bytes as River stores it, more than its %d MiB limit",
			r.Attempt, size, maxRecordBytes>>20)
	}
	return text, nil
}

// writeFields writes the fields of a, without braces, to b.
func (a *attemptJSON) writeFields(b *strings.Builder) {
	worker, _ := json.Marshal(a.Worker) // a string always marshals
	b.WriteString(`"attempt":`)
	b.WriteString(strconv.Itoa(a.Attempt))
	b.WriteString(`,"worker":`)
	b.Write(worker)
	b.WriteString(`,"run":`)
	b.Write(a.Run)
}

// liveRun is one attempt's run, as the live writer tracks it. Its fields are
// set before the run is shared, except inv, which the first callback sets,
// and live, which the writer guards.
type liveRun[T any] struct {
	writer  *liveWriter
	attempt int
	worker  string
	earlier []attemptJSON
	inv     atomic.Pointer[task.Invocation[T]]
	live    liveState
}

func (r *liveRun[T]) state() *liveState { return &r.live }

// changed, progressed and ignored are the run's callbacks: each posts the
// run to its live writer.
func (r *liveRun[T]) changed(inv *task.Invocation[T], _ task.Transition) { r.post(inv, false) }
func (r *liveRun[T]) progressed(inv *task.Invocation[T], _, _ int64)     { r.post(inv, false) }

func (r *liveRun[T]) ignored(inv *task.Invocation[T], ig task.Ignored[T]) {
	workReturn := ig.Event == task.EventReturn || ig.Event == task.EventFail || ig.Event == task.EventPermanent
	r.post(inv, workReturn)
}

func (r *liveRun[T]) post(inv *task.Invocation[T], workReturn bool) {
	r.inv.CompareAndSwap(nil, inv)
	r.writer.post(r, workReturn)
}

// current returns the current record of the run, or nil before the first
// callback.
func (r *liveRun[T]) current() (*recordJSON, error) {
	inv := r.inv.Load()
	if inv == nil {
		return nil, nil
	}
	return r.record(inv.Snapshot())
}

// fallback returns the current record of the run without its values, as
// withoutValues makes it, and without the earlier attempts' records if it
// is still too large. It returns nil before the first callback.
func (r *liveRun[T]) fallback() (*recordJSON, error) {
	inv := r.inv.Load()
	if inv == nil {
		return nil, nil
	}
	return fallbackRecord(r.attempt, r.worker, r.earlier, inv.Snapshot())
}

// fallbackRecord returns the record of a run whose values cannot be stored.
func fallbackRecord[T any](attempt int, worker string, earlier []attemptJSON, s task.Snapshot[T]) (*recordJSON, error) {
	bare := withoutValues(s)
	record, err := recordOf(attempt, worker, earlier, bare)
	if err != nil || storedSize(record.text()) <= maxRecordBytes {
		return record, err
	}
	return recordOf(attempt, worker, nil, bare)
}

// finished reports whether the run has reached a final status.
func (r *liveRun[T]) finished() bool {
	inv := r.inv.Load()
	return inv != nil && inv.Status().Finished()
}

// record returns the record of the run whose snapshot is s.
func (r *liveRun[T]) record(s task.Snapshot[T]) (*recordJSON, error) {
	return recordOf(r.attempt, r.worker, r.earlier, s)
}

// storedSize returns the length of text as River measures output, which
// is the length of its JSON string form. There, quotes, backslashes and
// the short escapes \n, \r, \t, \b and \f take two bytes. The characters
// encoding/json escapes for HTML, other control characters and U+2028 and
// U+2029 take six. It counts every three-byte character that starts like
// U+2028 as if it were one. Text short enough to stay under maxRecordBytes
// however it is escaped is not counted: storedSize returns len(text)+2.
func storedSize(text string) int {
	size := len(text) + 2
	if len(text) <= maxRecordBytes/6-2 {
		return size
	}
	for i := 0; i < len(text); i++ {
		switch c := text[i]; {
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			size++
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			size += 5
		case c == 0xE2:
			size += 3
		}
	}
	return size
}

// recordOf returns the record of the attempt whose snapshot is s.
func recordOf[T any](attempt int, worker string, earlier []attemptJSON, s task.Snapshot[T]) (*recordJSON, error) {
	run, err := s.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("marshal snapshot of run %s: %w", s.ID, err)
	}
	return &recordJSON{
		attemptJSON: attemptJSON{Attempt: attempt, Worker: worker, Run: run},
		Earlier:     earlier,
	}, nil
}

// readRecord returns the record in the metadata of job, or nil if there is
// none. Output of another shape, recorded by some other worker, counts as
// none.
func readRecord(job *rivertype.JobRow) *recordJSON {
	// Most jobs start with no record, and decoding their metadata only to
	// find none cost a few microseconds per job. JSON could spell the key
	// with \u escapes, so metadata holding any of those is decoded.
	if !bytes.Contains(job.Metadata, []byte(`"output"`)) && !bytes.Contains(job.Metadata, []byte(`\u`)) {
		return nil
	}
	var metadata struct {
		Output json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(job.Metadata, &metadata); err != nil || len(metadata.Output) == 0 {
		return nil
	}
	var text string
	if err := json.Unmarshal(metadata.Output, &text); err != nil {
		return nil
	}
	var record recordJSON
	if err := json.Unmarshal([]byte(text), &record); err != nil || len(record.Run) == 0 || record.Run[0] != '{' {
		return nil
	}
	return &record
}

// earlierAttempts returns the attempts recorded on the job row before this
// attempt began: the earlier ones of the last record, and the last record
// itself. An attempt that River put back in the queue without counting it,
// as it does when a client stops, appears with the same number as the next.
func earlierAttempts(job *rivertype.JobRow) []attemptJSON {
	last := readRecord(job)
	if last == nil {
		return nil
	}
	return append(append([]attemptJSON(nil), last.Earlier...), last.attemptJSON)
}
