// Package taskriver runs a [task.Task] as a River job, so that the same
// work and cancel pair runs on many processes and machines. A run survives
// the crash of one, is cancelled from any of them, and leaves its statuses
// and exit codes in the database. The package is built on River v0.51.2
// (github.com/riverqueue/river), with PostgreSQL through riverpgxv5 or
// SQLite through riversqlite.
//
// A [Worker] is a River worker that starts one run of its task for each
// attempt of a job. The job's args are the run's state, which [ArgsOf]
// reads in the work and cancel functions. River's job context is the run's
// parent context, so River's remote cancel (river.Client.JobCancel, from
// any process) cancels the run and runs the task's cancel function under
// its StopTimeout. A [Client] inserts jobs (also within a caller's
// transaction), and reads, waits for and cancels their runs from any
// process that shares the database.
//
// # Setting up
//
//   - Create River's tables with [Migrate] (or River's rivermigrate package
//     or command) before any client starts.
//   - Register a worker per job kind, such as the one that
//     taskriver.NewWorker[pgx.Tx, MyArgs](myTask, nil) returns, with
//     river.AddWorker.
//   - Give every task a Timeout and a StopTimeout. River's job timeout is
//     set from them (see below), and without them River's rescuer never
//     rescues the job of a crashed worker.
//   - Set river.Config.RescueStuckJobsAfter above the longest job timeout
//     of your tasks; it must be at least river.Config.JobTimeout, which
//     River validates. The default, one hour, suits tasks shorter than
//     that.
//   - On SQLite, open the database with [OpenSQLite] (one connection, WAL
//     mode). On PostgreSQL, [OpenPostgres] opens a pgx pool.
//   - To shut down, stop the River clients, call [Worker.WaitWorks] for
//     each worker, then close the database.
//
// # The job row
//
// The worker writes the run's record under the "output" key of the job's
// metadata: a JSON object with the attempt number, the ID of the River
// client that runs it, the task.Snapshot of the run (status, exit code,
// progress, history, result and error, late events), and the same for
// every earlier attempt. [Client.Get] decodes it as a [Run].
//
// The object is stored as one JSON string, because River's GIN index on
// the metadata column would otherwise get an entry for each of its keys
// and values. In this module's benchmark, those entries made PostgreSQL's
// work per job about a fifth larger. SQL decodes the string to search runs. Other
// workers may store output that is not JSON text, so on PostgreSQL a
// query decodes only the rows of the kinds taskriver works:
//
//	SELECT id FROM river_job
//	WHERE CASE WHEN kind = 'my_kind' THEN (metadata->>'output')::jsonb END
//	      @> '{"run": {"status": "UNKNOWN"}}'
//
// No index serves that query.
//
// Two River mechanisms write it. While the run goes on, each transition,
// progress report and late event marks the run for a write with
// river.Client.JobUpdateTx, which merges the "output" key into the
// metadata at once, under the row's lock, so that any process reading the
// row sees STARTED, a progress report or STOPPING live. The final record
// goes through river.MetadataSet under the same "output" key, which is
// what river.RecordOutput does too: River stores it in the same update
// that files the attempt, so the row's River state and the run's final
// status never disagree. Neither of those two writes before the attempt
// ends, so neither can show a run live. A table of this package's own
// would need its own migrations and could drift from River's row.
//
// Live writes are asynchronous, so that a transition never waits for the
// database. A run is first written once it has run for
// WorkerConfig.LiveDelay (20 ms by default). From then on, every change is
// written as soon as the writer is free: one goroutine per worker and River
// client writes the rows of all runs that changed, in one transaction, and
// exits when nothing is left to write. A run that changes again before its
// write is written in its latest state, and its history still holds every
// transition. A run that finishes within the live delay, or before the
// writer reaches it, is written once, by River, with its whole history,
// which spares short jobs a write of their own (see the benchmark in this
// module for the cost).
//
// Events after the attempt has returned to River, such as the late return
// of a work function that ignored its context, are written too, after
// River has filed the attempt, so that River's final update never hides
// them.
//
// # How a run ends in River
//
// Work returns to River once the run has finished. The final status maps to
// River's job states as follows.
//
//	status     exit code        River gets                  job state      retried
//	COMPLETED  completed        nil                         completed      no
//	FAILED     failed           the run's error             retryable, or  yes, under River's retry
//	                                                        discarded      policy and MaxAttempts
//	ABANDONED  failed           river.JobCancel(err)        cancelled      never
//	STOPPED    canceled by      river.JobCancel(err)        cancelled      never
//	           JobCancel
//	STOPPED    timedOut         river.JobCancel(err)        cancelled      never
//	STOPPED    canceled by a    the run's error, which      available      yes, and River does not
//	           client stop      wraps River's stop cause    again          count the attempt
//	UNKNOWN    cancelFailed or  river.JobCancel(err)        cancelled      never; the record's
//	           cancelTimedOut                                              work_running is true
//
// A run stopped by its own Timeout is not retried: a task that ran out of
// time once would most likely run out of time again, so retrying it is a
// decision for its caller (river.Client.JobRetry), not for a backoff
// schedule. An UNKNOWN run is never retried because its work may still be
// running, which the record shows with "work_running": true until the work
// returns, when a late write records what it returned. A process that
// stops its River client should call [Worker.WaitWorks] before it exits
// and closes the database, so that the return of such a work reaches the
// row.
//
// A run whose record cannot be stored is recorded without its values:
// its result or a late value cannot be marshaled to JSON, or the record is
// larger than the 32 MiB River stores as output. The result and late
// values are JSON null, error messages, panic values and stacks are cut to
// 64 KiB, at most 16 panics are kept, and the earlier attempts' records
// are dropped if the record is still too large. The same goes for a late
// write. A message River gets as the attempt's error is cut to 64 KiB too.
//
// A COMPLETED run of that kind is filed as cancelled, with an error
// stating that the result could not be stored. It is not retried, since
// its work would most likely return the same result again. [Run.Err] reports it as
// task.ErrFailed. The other statuses map as above.
//
// # Timeouts
//
// The task's Timeout and StopTimeout govern the run. River's job timeout
// (Worker.Timeout) is their sum plus WorkerConfig.TimeoutMargin, so that
// River's own deadline never fires first. A task without both limits gets
// River's job timeout -1, none.
//
// # Rescue
//
// A worker process that dies mid-run (SIGKILL, a lost machine) leaves its
// job in River's running state, with the last live record it wrote, such
// as STARTED. River's rescuer, which runs on the elected leader client
// every 30 seconds in River v0.51.2, makes such a job retryable once it has
// run longer than both its job timeout and RescueStuckJobsAfter, or
// discards it after its last attempt. Another worker then runs the next
// attempt, and its record keeps the dead attempt's last record among the
// earlier attempts, while River's errors hold "Stuck job rescued by
// JobRescuer". A job that river.Client.JobCancel was called on before its
// worker died is cancelled by the rescuer instead of retried.
//
// The rescued attempt's work may have done part of its job, and a worker
// that was only partitioned from the database may still be running it: as
// with any River job, the work must be safe to run again.
package taskriver
