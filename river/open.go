package taskriver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"

	// The database/sql driver "sqlite" for OpenSQLite.
	_ "modernc.org/sqlite"
)

// OpenSQLite opens the SQLite database file at path, creating it if
// needed, for River's SQLite driver (riversqlite.New). The pool has one
// connection, since SQLite allows one writer at a time and River's
// services would otherwise fail with SQLITE_BUSY, and the database is in
// WAL mode, so readers in other processes do not wait for that writer.
// The caller closes the pool after stopping every River client on it.
func OpenSQLite(path string) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("taskriver: missing SQLite path: got \"\"")
	}
	query := url.Values{"_pragma": {"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)"}}
	db, err := sql.Open("sqlite", "file:"+path+"?"+query.Encode())
	if err != nil {
		return nil, fmt.Errorf("taskriver: open SQLite database %q: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("taskriver: open SQLite database %q: %w", path, err)
	}
	return db, nil
}

// OpenPostgres opens a pgx pool on the PostgreSQL server that dsn names,
// for River's PostgreSQL driver (riverpgxv5.New). The caller closes the
// pool after stopping every River client on it.
func OpenPostgres(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("taskriver: open PostgreSQL pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("taskriver: connect to PostgreSQL: %w", err)
	}
	return pool, nil
}

// Migrate brings River's tables in the database of driver up to the
// latest version that this River release includes. Running it again is a
// no-op. River's clients, and so this package, need these tables.
func Migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx]) error {
	if driver == nil {
		return errors.New("taskriver: missing River driver: got nil")
	}
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return fmt.Errorf("taskriver: migrate River's tables: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("taskriver: migrate River's tables: %w", err)
	}
	return nil
}
