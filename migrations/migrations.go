// Package migrations holds the versioned SQL schema of Turnout's own tables (the event log,
// its dedup and quarantine tables, consumer offsets, the database roles) and applies it with
// golang-migrate.
//
// The analytics schema is not here: it is a projection, owned by the projector and rebuilt
// from the log (see internal/projections), so its shape can change without a migration.
//
// Migrations run as the database owner, whose session must never resolve a name to an
// object another role planted: every session Up opens pins search_path (see
// OwnerSearchPath) and golang-migrate's own table is schema-qualified.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"time"

	"github.com/golang-migrate/migrate/v4"
	_ "github.com/golang-migrate/migrate/v4/database/pgx/v5" // registers the pgx5:// driver
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
)

//go:embed *.sql
var files embed.FS

// OwnerSearchPath is the search_path of every session that may run as the database owner
// (migrate, projector forget, a rebuild run by the owner). With the default search_path
// ("$user", public) an unqualified name is looked up first in a schema named after the
// connecting role: a role allowed to create schemas could create one named after the owner
// and plant a look-alike table with a trigger, or a view calling its function, which the
// owner's session would then run with the owner's rights. pg_catalog first also keeps
// built-in functions from being shadowed by anything in public.
const OwnerSearchPath = "pg_catalog, public"

// migrateSearchPath is the search_path of the migrating session. Lookups are the same as
// OwnerSearchPath's (pg_catalog is searched first whenever it is not named), but naming
// pg_catalog first would make it the creation schema of the migrations' unqualified CREATE
// TABLEs, which PostgreSQL refuses; with public alone they are created in public.
const migrateSearchPath = "public"

// migrationsTable is golang-migrate's version table, schema-qualified: unqualified, the
// driver looks it up in current_schema(), which a schema named after the owner would be.
const migrationsTable = `"public"."schema_migrations"`

// ownerCheckTimeout bounds the few catalog queries Up runs before migrating.
const ownerCheckTimeout = 30 * time.Second

// ErrNotOwner is returned by Up when migrations are pending (or their version cannot be
// read) and the connecting role does not own the database: only the owner migrates.
var ErrNotOwner = errors.New("the connecting role does not own the database")

// Up applies every pending migration to the database at databaseURL (a postgres:// URL).
// golang-migrate holds a Postgres advisory lock while it runs, so several binaries starting
// at once apply each migration exactly once.
//
// Only a role that owns the database (a member of its owner, or a superuser) migrates. A
// service logging in as its own role (turnout_projector, turnout_ingest) finds the schema
// current and returns nil without touching it; if migrations are pending it returns an
// error wrapping ErrNotOwner that says to run them as the owner, rather than failing
// halfway with "permission denied".
func Up(databaseURL string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ownerCheckTimeout)
	defer cancel()
	owner, err := ownsDatabase(ctx, databaseURL)
	if err != nil {
		return err
	}
	if !owner.owns {
		return checkCurrent(ctx, databaseURL, owner)
	}
	m, err := newMigrate(databaseURL)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Latest is the version of the newest embedded migration.
func Latest() (uint, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return 0, fmt.Errorf("open embedded migrations: %w", err)
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, fmt.Errorf("read embedded migrations: %w", err)
	}
	for {
		next, err := src.Next(v)
		if errors.Is(err, fs.ErrNotExist) {
			return v, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read embedded migrations: %w", err)
		}
		v = next
	}
}

// Fingerprint identifies the set of migrations compiled in; tests use it to name a template
// database that is rebuilt whenever a migration changes.
func Fingerprint() string {
	names, _ := fs.Glob(files, "*.sql")
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, _ := files.ReadFile(n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// ownership says who is connected and whether that role may migrate the database.
type ownership struct {
	role, database string
	owns           bool
}

// ownsDatabaseSQL: pg_has_role(…, 'MEMBER') is true for the owner itself, its members and
// superusers. Every name is qualified with pg_catalog, since this runs before the session's
// search_path can be trusted.
const ownsDatabaseSQL = `
SELECT current_user, d.datname, pg_catalog.pg_has_role(current_user, d.datdba, 'MEMBER')
FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`

// versionSQL reads golang-migrate's version row.
const versionSQL = `SELECT version, dirty FROM ` + migrationsTable + ` LIMIT 1`

func ownsDatabase(ctx context.Context, databaseURL string) (ownership, error) {
	conn, err := connect(ctx, databaseURL)
	if err != nil {
		return ownership{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var o ownership
	if err := conn.QueryRow(ctx, ownsDatabaseSQL).Scan(&o.role, &o.database, &o.owns); err != nil {
		return ownership{}, fmt.Errorf("check database ownership: %w", err)
	}
	return o, nil
}

// checkCurrent returns nil when the database is at the newest embedded migration, and an
// error wrapping ErrNotOwner otherwise (pending, dirty, or the version table unreadable).
func checkCurrent(ctx context.Context, databaseURL string, o ownership) error {
	latest, err := Latest()
	if err != nil {
		return err
	}
	conn, err := connect(ctx, databaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var (
		version int64
		dirty   bool
	)
	notOwner := func(state string) error {
		return fmt.Errorf("migrations: %s, and role %s cannot apply them: %w (%s); run `migrate` as the owner, or start this command with -migrate=false",
			state, o.role, ErrNotOwner, o.database)
	}
	switch err := conn.QueryRow(ctx, versionSQL).Scan(&version, &dirty); {
	case errors.Is(err, pgx.ErrNoRows):
		return notOwner("none applied yet")
	case err != nil:
		return notOwner(fmt.Sprintf("the schema version cannot be read (%v)", err))
	case dirty:
		return notOwner(fmt.Sprintf("version %d is dirty (a migration failed halfway)", version))
	case version < int64(latest):
		return notOwner(fmt.Sprintf("the database is at version %d of %d", version, latest))
	}
	return nil
}

// connect opens one session with the owner's pinned search_path.
func connect(ctx context.Context, databaseURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, errors.New("parse database URL: invalid") // never echo: it may hold a password
	}
	cfg.RuntimeParams["search_path"] = OwnerSearchPath
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect for migrations: %w", err)
	}
	return conn, nil
}

func newMigrate(databaseURL string) (*migrate.Migrate, error) {
	src, err := iofs.New(files, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return nil, errors.New("parse database URL: invalid")
	}
	// The pgx/v5 driver registers itself as pgx5://; keep every other part of the URL. The
	// driver passes unknown query parameters to PostgreSQL as session settings (search_path)
	// and reads its own x- options (the qualified version table).
	u.Scheme = "pgx5"
	q := u.Query()
	q.Set("search_path", migrateSearchPath)
	q.Set("x-migrations-table", migrationsTable)
	q.Set("x-migrations-table-quoted", "true")
	u.RawQuery = q.Encode()
	m, err := migrate.NewWithSourceInstance("iofs", src, u.String())
	if err != nil {
		return nil, fmt.Errorf("connect for migrations: %w", err)
	}
	return m, nil
}
