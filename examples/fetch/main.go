// Command fetch runs an HTTP fetch as a task against an upstream service
// that hangs, and logs each transition of the run: the start, the timeout
// and the stop. Its cancel function sends the upstream a request to drop
// the job.
//
//	go run ./examples/fetch
//
// The upstream is a net/http/httptest server on 127.0.0.1, started by the
// program itself. The run times out after Timeout and ends STOPPED with
// the exit code timedOut.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tasklife/task"
)

const (
	// maxReport bounds the size of a report that a fetch reads, in bytes.
	maxReport = 1 << 20
	// maxAbort bounds the request that drops a job once the work has
	// returned, when StopTimeout no longer applies.
	maxAbort = 30 * time.Second
)

// Fetcher fetches reports from an upstream service, one run per report.
// Its task pairs the fetch with a cancel function that sends the upstream a
// request to drop the report's job, since closing the connection stops only
// the client's side of the work.
type Fetcher struct {
	Client  *http.Client
	BaseURL string // the upstream's URL, such as "http://127.0.0.1:8080"

	// Timeout bounds a fetch, and StopTimeout bounds the cancel request,
	// as the fields of task.Task do.
	Timeout     time.Duration
	StopTimeout time.Duration
}

// Task returns the task that fetches the report named by the ID of each
// invocation: start it with task.WithID(reportID).
func (f *Fetcher) Task() task.Task[[]byte] {
	return task.Task[[]byte]{
		Work:        f.fetch,
		Cancel:      f.abort,
		Timeout:     f.Timeout,
		StopTimeout: f.StopTimeout,
	}
}

// fetch GETs the report. A 4xx status is a permanent failure, since the
// same request would fail again.
func (f *Fetcher) fetch(ctx context.Context, inv *task.Invocation[[]byte]) ([]byte, error) {
	resp, err := f.send(ctx, http.MethodGet, inv.ID())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusOK:
		return io.ReadAll(io.LimitReader(resp.Body, maxReport))
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return nil, task.Permanent(fmt.Errorf("fetch report %q: %s", inv.ID(), resp.Status))
	default:
		return nil, fmt.Errorf("fetch report %q: %s", inv.ID(), resp.Status)
	}
}

// abort sends the upstream a request to drop the report's job. A 2xx
// status confirms the stop, and any other makes the run UNKNOWN.
func (f *Fetcher) abort(ctx context.Context, inv *task.Invocation[[]byte]) error {
	ctx, cancel := dropContext(ctx)
	defer cancel()

	resp, err := f.send(ctx, http.MethodDelete, inv.ID())
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cancel report %q: %s", inv.ID(), resp.Status)
	}
	return nil
}

// dropContext returns the context for the request that drops a job, given
// the cancel function's ctx. That ctx ends when StopTimeout elapses, and
// also as soon as the work returns, which for a fetch is the moment its
// connection closes. A closed connection stops only the client's side of
// the job, so the drop request outlives the work, bounded by maxAbort, and
// ends with ctx only when StopTimeout elapses.
func dropContext(ctx context.Context) (context.Context, context.CancelFunc) {
	drop, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), maxAbort,
		fmt.Errorf("drop request timed out after %v", maxAbort))
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), task.ErrStopTimedOut) {
			cancel()
		}
	})
	return drop, func() {
		stop()
		cancel()
	}
}

func (f *Fetcher) send(ctx context.Context, method, id string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, f.BaseURL+"/reports/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, task.Permanent(err) // a bad BaseURL stays bad
	}
	return f.Client.Do(req)
}

// upstream is a report service that never responds to a GET: it holds each
// request until the client disconnects. A DELETE drops the report's job,
// and the upstream records its ID.
type upstream struct {
	// Set before serving: how DELETE behaves.
	dropStatus int  // the status it returns; 0 means 204 No Content
	hangDrops  bool // it hangs until the client disconnects

	mu      sync.Mutex
	deleted []string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/reports/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		<-r.Context().Done()
	case http.MethodDelete:
		if u.hangDrops {
			<-r.Context().Done()
			return
		}
		if u.dropStatus != 0 {
			http.Error(w, "cannot drop the job", u.dropStatus)
			return
		}
		u.mu.Lock()
		u.deleted = append(u.deleted, id)
		u.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (u *upstream) deletedIDs() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.deleted...)
}

func main() {
	if err := run(context.Background(), os.Stdout, 2*time.Second); err != nil {
		fmt.Fprintln(os.Stderr, "fetch:", err)
		os.Exit(1)
	}
}

// run fetches one report from a hanging upstream with the given timeout,
// and logs the run to out.
func run(ctx context.Context, out io.Writer, timeout time.Duration) error {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()

	f := &Fetcher{Client: srv.Client(), BaseURL: srv.URL, Timeout: timeout, StopTimeout: time.Second}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	inv := f.Task().Start(ctx, task.WithID("report-7"),
		task.WithCallbacks(task.LogCallbacks[[]byte](logger)))

	_, err := inv.Wait(ctx)
	fmt.Fprintf(out, "status %s, exit code %s\n", inv.Status(), inv.ExitCode())
	if !errors.Is(err, task.ErrTimedOut) {
		return fmt.Errorf("run ended with %v, expected a timeout", err)
	}
	return nil
}
