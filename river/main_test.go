package taskriver_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tasklife/task/internal/syncbuf"
	taskriver "github.com/tasklife/task/river"
)

// The test binary doubles as a worker process: started with workerEnv set,
// TestMain runs a River client that works the test tasks on the database
// that dsnEnv names, until its standard input closes or it is killed.
const (
	workerEnv = "TASKRIVER_TEST_WORKER_ID"
	dsnEnv    = "TASKRIVER_TEST_WORKER_DSN"

	// serverEnv names the PostgreSQL server the tests create their
	// databases on. Without it, TestMain starts one with
	// ../.ci/postgres.sh and stops it at the end.
	serverEnv = "TASKRIVER_TEST_DSN"
)

// serverDSN is the DSN of the test server's postgres database.
var serverDSN string

func TestMain(m *testing.M) {
	if id := os.Getenv(workerEnv); id != "" {
		os.Exit(runWorkerProcess(id, os.Getenv(dsnEnv)))
	}

	serverDSN = os.Getenv(serverEnv)
	stop := func() {}
	if serverDSN == "" {
		dsn, stopServer, err := startServer()
		if err != nil {
			fmt.Fprintf(os.Stderr, "start PostgreSQL for the tests: %v\n", err)
			os.Exit(1)
		}
		serverDSN, stop = dsn, stopServer
	}

	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	stop()
	os.Exit(code)
}

// startServer starts a throwaway PostgreSQL server with the repository's
// script and returns its DSN and a function that stops it.
func startServer() (string, func(), error) {
	script, err := filepath.Abs("../.ci/postgres.sh")
	if err != nil {
		return "", nil, err
	}
	out, err := exec.Command(script, "start").Output()
	if err != nil {
		return "", nil, fmt.Errorf("%s start: %w", script, err)
	}
	vars := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if name, value, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			vars[name] = value
		}
	}
	dsn, dir := vars[serverEnv], vars["PGTEST_DIR"]
	if dsn == "" || dir == "" {
		return "", nil, fmt.Errorf("%s start printed no DSN: %q", script, out)
	}
	stop := func() {
		if err := exec.Command(script, "stop", dir).Run(); err != nil {
			fmt.Fprintf(os.Stderr, "%s stop %s: %v\n", script, dir, err)
		}
	}
	return dsn, stop, nil
}

// testDatabase creates an empty database with River's tables for one test
// and returns its DSN. The database is dropped when the test ends.
func testDatabase(t testing.TB) string {
	t.Helper()
	ctx := testContext(t, 30*time.Second)

	name := "t_" + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_"))
	name = name[:min(len(name), 50)] + "_" + strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	admin, err := pgx.Connect(ctx, serverDSN)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	require.NoError(t, admin.Close(ctx))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, serverDSN)
		if err != nil {
			t.Errorf("connect to drop database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(serverDSN)
	require.NoError(t, err, "%s must be a postgres:// URL", serverEnv)
	u.Path = "/" + name
	dsn := u.String()

	pool := testPool(t, dsn)
	require.NoError(t, taskriver.Migrate(ctx, riverpgxv5.New(pool)))
	return dsn
}

func testPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := taskriver.OpenPostgres(testContext(t, 10*time.Second), dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// testContext returns a context that ends after d or when the test ends,
// so that no wait in a test can hang it.
func testContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// testClient returns an insert-only River client on dsn, which works no
// jobs, and the run handle on it.
func testClient(t *testing.T, dsn string) (*taskriver.Client[pgx.Tx, string], *pgxpool.Pool) {
	t.Helper()
	pool := testPool(t, dsn)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	require.NoError(t, err)
	client, err := taskriver.NewClient[string](rc, &taskriver.ClientConfig{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	return client, pool
}

// workerProcess is a copy of the test binary working jobs as a River
// client with ID id.
type workerProcess struct {
	id     string
	cmd    *exec.Cmd
	stdin  interface{ Close() error }
	done   chan struct{} // closed when the process has exited
	err    error         // how the process exited; set before done is closed
	killed bool          // the test killed the process on purpose
	output *syncbuf.Buffer
}

// startWorker starts a worker process on dsn and returns once its River
// client has started. The process is stopped when the test ends.
func startWorker(t *testing.T, dsn, id string) *workerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+id, dsnEnv+"="+dsn)
	output := &syncbuf.Buffer{}
	cmd.Stderr = output
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())

	w := &workerProcess{id: id, cmd: cmd, stdin: stdin, done: make(chan struct{}), output: output}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected first line %q", line)
		}
		ready <- err
		w.err = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.stop(t)
		if t.Failed() {
			t.Logf("worker %s output:\n%s", id, output.String())
		}
	})

	select {
	case err := <-ready:
		require.NoError(t, err, "worker %s did not start:\n%s", id, output.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("worker %s not ready after 30s:\n%s", id, output.String())
	}
	return w
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (w *workerProcess) kill(t *testing.T) {
	t.Helper()
	w.killed = true
	require.NoError(t, w.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %s still running 10s after SIGKILL", w.id)
	}
}

// stop closes the process's standard input, which makes it stop its River
// client, and kills it if it has not exited within 20 seconds. A worker
// that exits with an error fails the test: the race detector, for one,
// makes the process exit with status 66 when it found a data race.
func (w *workerProcess) stop(t *testing.T) {
	_ = w.stdin.Close()
	select {
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Errorf("worker %s did not stop within 20s; killing it", w.id)
		w.killed = true
		_ = w.cmd.Process.Kill()
		<-w.done
	}
	if !w.killed && w.err != nil {
		t.Errorf("worker %s exited with %v", w.id, w.err)
	}
}

// runWorkerProcess is the main function of a worker process.
func runWorkerProcess(id, dsn string) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	pool, err := taskriver.OpenPostgres(ctx, dsn)
	if err != nil {
		logger.Error("open database failed", slog.String("error", err.Error()))
		return 1
	}
	defer pool.Close()

	workers, err := testWorkers[pgx.Tx](logger)
	if err != nil {
		logger.Error("build workers failed", slog.String("error", err.Error()))
		return 1
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:                   id,
		Logger:               logger,
		Workers:              workers,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		FetchCooldown:        10 * time.Millisecond,
		FetchPollInterval:    100 * time.Millisecond,
		JobTimeout:           rescueJobTimeout,
		RescueStuckJobsAfter: rescueJobTimeout,
		RetryPolicy:          retryAtOnce{},
	})
	if err != nil {
		logger.Error("create River client failed", slog.String("error", err.Error()))
		return 1
	}
	if err := client.Start(ctx); err != nil {
		logger.Error("start River client failed", slog.String("error", err.Error()))
		return 1
	}
	fmt.Println("ready")

	// Stop on the end of standard input (the test closed it or died) or
	// on SIGTERM.
	stopped := make(chan struct{})
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString(0)
		close(stopped)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM)
	select {
	case <-stopped:
	case <-signals:
	}

	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.StopAndCancel(stopCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		logger.Error("stop River client failed", slog.String("error", err.Error()))
		return 1
	}
	return 0
}

// retryAtOnce retries a failed job right away, so that retry tests do not
// wait for River's default backoff.
type retryAtOnce struct{}

func (retryAtOnce) NextRetry(*rivertype.JobRow) time.Time { return time.Now() }

// rescueJobTimeout is River's job timeout for rescueTask, and the time after
// which River's rescuer considers its running job stuck.
const rescueJobTimeout = rescueTimeout + rescueStopTimeout + rescueMargin

const (
	rescueTimeout     = 2 * time.Second
	rescueStopTimeout = time.Second
	rescueMargin      = time.Second
)
