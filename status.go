package task

import "fmt"

// Status is the state of a run. The values and their spellings are Spring
// Batch's batch statuses, less the ones that need a job repository.
//
// The zero Status means "no status yet". No caller sees it once
// [Task.Start] has returned.
type Status uint8

const (
	// StatusStarting is the first status of every valid run: Start has
	// accepted it and the work has not begun. It is followed by
	// StatusStarted, or by StatusStopping when the run is cancelled or
	// times out before its work begins.
	StatusStarting Status = iota + 1

	// StatusStarted means the work function is running. It is followed by
	// StatusCompleted, StatusFailed or StatusAbandoned when the work
	// returns, or by StatusStopping when cancellation begins.
	StatusStarted

	// StatusCompleted means the work returned a result. It is final.
	StatusCompleted

	// StatusFailed means the work returned an error, panicked or exited
	// without returning. The run may be retried. Only [Invocation.Abandon]
	// leaves it, for StatusAbandoned.
	StatusFailed

	// StatusStopping means cancellation has begun: the work's context is
	// cancelled and the cancel function, if any, is running. It is followed
	// by StatusStopped or StatusUnknown.
	StatusStopping

	// StatusStopped means the stop is confirmed: the cancel function
	// returned nil, or the work returned. Only [Invocation.Abandon] leaves
	// it.
	StatusStopped

	// StatusUnknown means the cancel function failed or ran past
	// StopTimeout, so it is not known whether the work still runs. Only
	// [Invocation.Abandon] leaves it.
	StatusUnknown

	// StatusAbandoned is a business failure that must never be retried:
	// the work returned an error wrapped by [Permanent], or a caller
	// abandoned a failed, stopped or unknown run. It is final.
	StatusAbandoned

	numStatuses = iota + 1
)

var statusNames = [numStatuses]string{
	StatusStarting:  "STARTING",
	StatusStarted:   "STARTED",
	StatusCompleted: "COMPLETED",
	StatusFailed:    "FAILED",
	StatusStopping:  "STOPPING",
	StatusStopped:   "STOPPED",
	StatusUnknown:   "UNKNOWN",
	StatusAbandoned: "ABANDONED",
}

// Finished reports whether s is one of the statuses that end a run:
// StatusCompleted, StatusFailed, StatusStopped, StatusUnknown and
// StatusAbandoned.
func (s Status) Finished() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusStopped, StatusUnknown, StatusAbandoned:
		return true
	}
	return false
}

// String returns the upper-case name of s, such as "STARTED", or "" for
// the zero Status. An undefined value prints as "Status(N)".
func (s Status) String() string {
	if s == 0 {
		return ""
	}
	if s < numStatuses {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// MarshalText implements [encoding.TextMarshaler] with the spelling of
// [Status.String]. It fails for an undefined value.
func (s Status) MarshalText() ([]byte, error) {
	if s >= numStatuses {
		return nil, fmt.Errorf("task: invalid Status %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler]. It accepts the
// spellings of [Status.String], and the empty text for the zero Status.
func (s *Status) UnmarshalText(text []byte) error {
	v, err := ParseStatus(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseStatus returns the Status spelled name, as [Status.String] spells
// it; the empty string is the zero Status. Any other text is an error that
// quotes it.
func ParseStatus(name string) (Status, error) {
	if name == "" {
		return 0, nil
	}
	for s := StatusStarting; s < numStatuses; s++ {
		if statusNames[s] == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("task: invalid Status %q: want one of STARTING, STARTED, "+
		"COMPLETED, FAILED, STOPPING, STOPPED, UNKNOWN, ABANDONED", name)
}
