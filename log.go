package task

import (
	"context"
	"errors"
	"log/slog"
)

// Messages of the records that [LogCallbacks] logs.
const (
	logTransition = "task transition"
	logIgnored    = "task event ignored"
)

// LogCallbacks returns callbacks that log to l one record for each
// transition and each ignored event of a run, for [WithCallbacks]:
//
//	inv := tk.Start(ctx, task.WithCallbacks(task.LogCallbacks[Report](logger)))
//
// A transition's record has the message "task transition" and the
// attributes invocation_id, status, from (absent for the first transition),
// event, exit_code and elapsed, the time since Start. A StatusStopping
// record adds cause, the cause of the cancellation. A record of a finished
// run that did not complete adds error, the error that [Invocation.Wait]
// returned right after that transition. An ignored event's record has the
// message "task event ignored", the attributes invocation_id, status (the
// status the event met), event, exit_code and elapsed, and error if the
// event carried one.
//
// Levels: StatusStarting and StatusStarted at debug; StatusCompleted,
// StatusStopped and the StatusStopping of a cancellation at info; the
// StatusStopping of a timeout at warn; StatusFailed, StatusUnknown and
// StatusAbandoned at error. An ignored event is at warn when it carries a
// late failure of the work or of the cancel function for a reason of its
// own, and at info otherwise, such as a work that returns the cause of its
// cancelled context. Progress reports are not logged, since a work may
// report thousands; read them from [Invocation.Snapshot].
//
// Records are logged with the context given to Start, so that a handler can
// read its values. A nil l returns callbacks that log nothing.
func LogCallbacks[T any](l *slog.Logger) Callbacks[T] {
	if l == nil {
		return Callbacks[T]{}
	}
	return Callbacks[T]{
		Changed: func(inv *Invocation[T], tr Transition) { inv.logTransition(l, tr) },
		Ignored: func(inv *Invocation[T], ig Ignored[T]) { inv.logIgnored(l, ig) },
	}
}

func (inv *Invocation[T]) logTransition(l *slog.Logger, tr Transition) {
	level := slog.LevelInfo
	switch tr.To {
	case StatusStarting, StatusStarted:
		level = slog.LevelDebug
	case StatusStopping:
		if tr.Event == EventTimeout {
			level = slog.LevelWarn
		}
	case StatusFailed, StatusUnknown, StatusAbandoned:
		level = slog.LevelError
	}
	ctx := inv.logContext()
	if !l.Enabled(ctx, level) {
		return
	}

	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("invocation_id", inv.ID()), slog.String("status", tr.To.String()))
	if tr.From != 0 {
		attrs = append(attrs, slog.String("from", tr.From.String()))
	}
	attrs = append(attrs,
		slog.String("event", tr.Event.String()),
		slog.String("exit_code", tr.ExitCode.String()),
		slog.Duration("elapsed", tr.At.Sub(inv.startedAt)))
	switch {
	case tr.To == StatusStopping:
		attrs = append(attrs, slog.Any("cause", inv.causeOf()))
	case tr.To.Finished() && tr.To != StatusCompleted:
		attrs = append(attrs, slog.Any("error", inv.errorAfter(tr)))
	}
	l.LogAttrs(ctx, level, logTransition, attrs...)
}

func (inv *Invocation[T]) logIgnored(l *slog.Logger, ig Ignored[T]) {
	level := slog.LevelInfo
	switch ig.Event {
	case EventFail, EventPermanent, EventStopFail:
		if !echoesStop(ig.Err) {
			level = slog.LevelWarn
		}
	}
	ctx := inv.logContext()
	if !l.Enabled(ctx, level) {
		return
	}

	attrs := []slog.Attr{
		slog.String("invocation_id", inv.ID()),
		slog.String("status", ig.Status.String()),
		slog.String("event", ig.Event.String()),
		slog.String("exit_code", inv.ExitCode().String()),
		slog.Duration("elapsed", ig.At.Sub(inv.startedAt)),
	}
	if ig.Err != nil {
		attrs = append(attrs, slog.Any("error", ig.Err))
	}
	l.LogAttrs(ctx, level, logIgnored, attrs...)
}

// echoesStop reports whether err only repeats why a work or cancel
// function was told to stop: the cause of the work's context, or the end
// of the cancel function's context.
func echoesStop(err error) bool {
	for _, stop := range []error{ErrCanceled, ErrTimedOut, ErrStopTimedOut, context.Canceled} {
		if errors.Is(err, stop) {
			return true
		}
	}
	return false
}

// logContext returns the context given to Start, or the background context
// for a run that Start rejected before it kept one.
func (inv *Invocation[T]) logContext() context.Context {
	if inv.parent == nil {
		return context.Background()
	}
	return inv.parent
}

func (inv *Invocation[T]) causeOf() error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.cause
}

// errorAfter returns the run's error as it was right after the finishing
// transition tr. Its callbacks may run after a later Abandon, whose error
// wraps the earlier one.
func (inv *Invocation[T]) errorAfter(tr Transition) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.historyLen == 0 || inv.transition(inv.history[inv.historyLen-1]) == tr {
		return inv.err
	}
	if abandoned, ok := inv.err.(*runError); ok && abandoned.kind == ErrAbandoned {
		return abandoned.prior
	}
	return inv.err
}
