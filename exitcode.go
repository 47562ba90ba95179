package task

import "fmt"

// ExitCode is the reason a run ended, apart from the [Status] it ended in: a
// run that is [StatusStopped] may have been cancelled or timed out.
type ExitCode uint8

const (
	// ExitUnknown is the zero value: the run has not ended yet, or it was
	// abandoned from a status with no exit code.
	ExitUnknown ExitCode = iota

	// ExitCompleted is set when the work returns a result.
	ExitCompleted

	// ExitFailed is set when the work returns an error, panics, or exits
	// without returning, and when a run is invalid from birth.
	ExitFailed

	// ExitTimedOut is set when Timeout elapses before the run finishes.
	// Cancellation then begins.
	ExitTimedOut

	// ExitCanceled is set by [Invocation.Cancel] and by the end of the
	// parent context.
	ExitCanceled

	// ExitCancelFailed is set when the cancel function returns an error or
	// panics. The status is then StatusUnknown.
	ExitCancelFailed

	// ExitCancelTimedOut is set when StopTimeout elapses while the run is
	// StatusStopping. The status is then StatusUnknown.
	ExitCancelTimedOut

	numExitCodes = iota
)

var exitCodeNames = [numExitCodes]string{
	ExitUnknown:        "unknown",
	ExitCompleted:      "completed",
	ExitFailed:         "failed",
	ExitTimedOut:       "timedOut",
	ExitCanceled:       "canceled",
	ExitCancelFailed:   "cancelFailed",
	ExitCancelTimedOut: "cancelTimedOut",
}

// String returns the name of c in lower camel case, such as "timedOut". An
// undefined value prints as "ExitCode(N)".
func (c ExitCode) String() string {
	if c < numExitCodes {
		return exitCodeNames[c]
	}
	return fmt.Sprintf("ExitCode(%d)", uint8(c))
}

// MarshalText implements [encoding.TextMarshaler] with the spelling of
// [ExitCode.String]. It fails for an undefined value.
func (c ExitCode) MarshalText() ([]byte, error) {
	if c >= numExitCodes {
		return nil, fmt.Errorf("task: invalid ExitCode %d", uint8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements [encoding.TextUnmarshaler]. It accepts the
// spellings of [ExitCode.String].
func (c *ExitCode) UnmarshalText(text []byte) error {
	v, err := ParseExitCode(string(text))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParseExitCode returns the ExitCode spelled name, as [ExitCode.String]
// spells it. Any other text, the empty string included, is an error that
// quotes it.
func ParseExitCode(name string) (ExitCode, error) {
	for c := range ExitCode(numExitCodes) {
		if exitCodeNames[c] == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("task: invalid ExitCode %q: want one of unknown, completed, "+
		"failed, timedOut, canceled, cancelFailed, cancelTimedOut", name)
}
