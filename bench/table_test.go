package bench

// The anchors in this package keep their own copy of task's lifecycle, so
// that each state machine runs exactly the same statuses and edges as task.
// Status and event numbering follows the task package, but nothing here
// imports it: the anchors must not get cheaper or dearer when task changes.

type status uint8

const (
	statusNone status = iota // no status yet, before the start event
	statusStarting
	statusStarted
	statusCompleted
	statusFailed
	statusStopping
	statusStopped
	statusUnknown
	statusAbandoned
	numStatuses
)

var statusNames = [numStatuses]string{
	statusNone:      "NONE",
	statusStarting:  "STARTING",
	statusStarted:   "STARTED",
	statusCompleted: "COMPLETED",
	statusFailed:    "FAILED",
	statusStopping:  "STOPPING",
	statusStopped:   "STOPPED",
	statusUnknown:   "UNKNOWN",
	statusAbandoned: "ABANDONED",
}

func (s status) String() string { return statusNames[s] }

type exitCode uint8

const (
	exitUnknown exitCode = iota
	exitCompleted
	exitFailed
	exitTimedOut
	exitCanceled
	exitCancelFailed
	exitCancelTimedOut
)

type event uint8

const (
	eventStart event = iota
	eventInvalid
	eventBegin
	eventReturn
	eventFail
	eventPermanent
	eventCancel
	eventTimeout
	eventCancelReturn
	eventCancelFail
	eventStopTimeout
	eventAbandon
	numEvents
)

var eventNames = [numEvents]string{
	eventStart:        "start",
	eventInvalid:      "invalid",
	eventBegin:        "begin",
	eventReturn:       "return",
	eventFail:         "fail",
	eventPermanent:    "permanent",
	eventCancel:       "cancel",
	eventTimeout:      "timeout",
	eventCancelReturn: "cancel_return",
	eventCancelFail:   "cancel_fail",
	eventStopTimeout:  "stop_timeout",
	eventAbandon:      "abandon",
}

func (e event) String() string { return eventNames[e] }

// edge is one row of task's transition table. keepExit means the exit code
// set by an earlier transition stays, as for STOPPING -> STOPPED.
type edge struct {
	event    event
	from     []status
	to       status
	exit     exitCode
	keepExit bool
}

// edges is task's transition table: 12 events over the 8 statuses. The
// work returning in any way while STOPPING proves that it stopped, so the
// return, fail and permanent events all lead from STOPPING to STOPPED.
var edges = []edge{
	{event: eventStart, from: []status{statusNone}, to: statusStarting, exit: exitUnknown},
	{event: eventInvalid, from: []status{statusNone}, to: statusFailed, exit: exitFailed},
	{event: eventBegin, from: []status{statusStarting}, to: statusStarted, keepExit: true},
	{event: eventReturn, from: []status{statusStarted}, to: statusCompleted, exit: exitCompleted},
	{event: eventFail, from: []status{statusStarted}, to: statusFailed, exit: exitFailed},
	{event: eventPermanent, from: []status{statusStarted}, to: statusAbandoned, exit: exitFailed},
	{event: eventCancel, from: []status{statusStarting, statusStarted}, to: statusStopping, exit: exitCanceled},
	{event: eventTimeout, from: []status{statusStarting, statusStarted}, to: statusStopping, exit: exitTimedOut},
	{event: eventReturn, from: []status{statusStopping}, to: statusStopped, keepExit: true},
	{event: eventFail, from: []status{statusStopping}, to: statusStopped, keepExit: true},
	{event: eventPermanent, from: []status{statusStopping}, to: statusStopped, keepExit: true},
	{event: eventCancelReturn, from: []status{statusStopping}, to: statusStopped, keepExit: true},
	{event: eventCancelFail, from: []status{statusStopping}, to: statusUnknown, exit: exitCancelFailed},
	{event: eventStopTimeout, from: []status{statusStopping}, to: statusUnknown, exit: exitCancelTimedOut},
	{event: eventAbandon, from: []status{statusFailed, statusStopped, statusUnknown}, to: statusAbandoned, keepExit: true},
}
