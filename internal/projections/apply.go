package projections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/turnout-analytics/turnout/internal/eventlog"
)

// Event is one log row.
type Event struct {
	Offset     int64
	ReceivedAt time.Time
	Payload    []byte
}

// BatchSize is how many log rows ApplyLog stages and applies per statement group: large
// enough that per-statement overhead vanishes, small enough that the staged jsonb and the
// sorts of DISTINCT ON stay in memory.
const BatchSize = 50000

// rebuildWorkMem is the work_mem ApplyLog sets for its transaction: enough to sort the
// staged registrant fields of a BatchSize chunk in memory.
const rebuildWorkMem = "64MB"

// Event names the statements care about.
const (
	nameAdded   = "registrant.added"
	nameJoined  = "registrant.joined"
	nameCreated = "webinar.created"
	nameChanged = "webinar.changed"
	// reconcile's snapshots (internal/reconcile): rest_webinars.sql projects the webinar
	// snapshots, rest_snapshots.sql and rest_registrants.sql the others.
	nameWebinarSnapshot    = "turnout.webinar.snapshot"
	nameSessionSnapshot    = "turnout.session.snapshot"
	nameAttendanceSnapshot = "turnout.attendance.snapshot"
	nameRegistrantSnapshot = "turnout.registrant.snapshot"
)

// Apply applies events (any order, duplicates allowed) to schema inside tx. It sends its
// statements in one pipelined batch (after ensuring the staging table exists) and skips the
// statements that no staged event name needs. It does not commit; after an error, the
// caller rolls back (to a savepoint): Apply leaves nothing behind that such a rollback would
// not undo.
func Apply(ctx context.Context, tx pgx.Tx, schema string, events ...Event) error {
	if len(events) == 0 {
		return nil
	}
	// Separately first: pgx prepares a whole batch before running it, and the batch's
	// statements name the staging table.
	if err := PrepareConn(ctx, tx); err != nil {
		return err
	}
	// Also before the batch, for the same reason: its statements are prepared (their names
	// resolved) before any of them runs.
	if err := UseSchema(ctx, tx, schema); err != nil {
		return err
	}
	b := &pgx.Batch{}
	if err := queueApply(b, events...); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("apply events to %s: %w", schema, err)
	}
	return nil
}

// PrepareConn creates the session's staging table if it does not exist yet. Callers of
// QueueApply run it once per connection (e.g. in pgxpool's AfterConnect), outside any
// transaction, so that no rollback can take the table away again.
func PrepareConn(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}) error {
	st, err := loadStatements()
	if err != nil {
		return err
	}
	if _, err := db.Exec(ctx, st.stageCreate); err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	return nil
}

// queueApply queues onto b the statements Apply sends. The connection must have the
// staging table (PrepareConn) and the transaction the search_path (UseSchema).
func queueApply(b *pgx.Batch, events ...Event) error {
	st, err := loadStatements()
	if err != nil {
		return err
	}
	offsets := make([]int64, len(events))
	received := make([]time.Time, len(events))
	payloads := make([]string, len(events))
	names := map[string]bool{}
	for i, e := range events {
		offsets[i], received[i], payloads[i] = e.Offset, e.ReceivedAt, string(e.Payload)
		names[eventName(e.Payload)] = true
	}
	b.Queue(st.stageClear)
	b.Queue(st.stageEvents, offsets, received, payloads)
	queueProjections(b, st, names)
	return nil
}

// eventName reads just the eventName of a payload, to choose statements. A payload it
// cannot read gets "", which selects every statement: the SQL then decides (and fails on
// a payload that is not JSON).
func eventName(payload []byte) string {
	var head struct {
		EventName string `json:"eventName"`
	}
	if json.Unmarshal(payload, &head) != nil {
		return ""
	}
	return head.EventName
}

// queueProjections queues the projection statements, in dependency order, for the staged
// event names (all of them when names is nil or holds "").
func queueProjections(b *pgx.Batch, st *statements, names map[string]bool) {
	all := names == nil || names[""]
	has := func(n string) bool { return all || names[n] }
	// Order matters: webinar_times is derived from the webinar layers (the REST one
	// included). registrants.sql writes its own webinar rows (stub layer and counters), so
	// it may run before or after the webinar statements.
	if has(nameCreated) {
		b.Queue(st.webinarCreated)
	}
	if has(nameChanged) {
		b.Queue(st.webinarChanged)
	}
	if has(nameWebinarSnapshot) {
		b.Queue(st.restWebinars)
	}
	if has(nameCreated) || has(nameChanged) || has(nameWebinarSnapshot) {
		b.Queue(st.timesDelete)
		b.Queue(st.timesInsert)
	}
	if has(nameSessionSnapshot) || has(nameAttendanceSnapshot) {
		b.Queue(st.restSnapshots)
	}
	if has(nameAdded) || has(nameJoined) {
		b.Queue(st.registrants)
	}
	// A statement of its own after registrants.sql: each sees the rows the other wrote, so a
	// registrant known from both a webhook and a snapshot of the batch is counted once.
	if has(nameRegistrantSnapshot) || has(nameAttendanceSnapshot) {
		b.Queue(st.restRegistrants)
	}
}

// ApplyLog applies every log row with after < (transaction_id, offset) <= upTo to schema
// inside tx, set-based, BatchSize rows per statement group; it returns the number of rows
// applied. It is used by rebuild. It does not commit.
func ApplyLog(ctx context.Context, tx pgx.Tx, schema string, after, upTo eventlog.Position) (int64, error) {
	return applyLog(ctx, tx, schema, after, upTo, BatchSize)
}

// applyLog is ApplyLog with a chosen chunk size (tests use small ones).
func applyLog(ctx context.Context, tx pgx.Tx, schema string, after, upTo eventlog.Position, batchSize int) (int64, error) {
	st, err := prepareChunks(ctx, tx, schema)
	if err != nil {
		return 0, err
	}
	var total int64
	cursor := after
	for cursor != upTo {
		clear := st.stageClear
		if total > 0 {
			clear = truncateStage
		}
		n, last, err := applyChunk(ctx, tx, schema, st, clear, func(b *pgx.Batch) {
			b.Queue(st.stageLog, logRange(cursor, upTo, batchSize)...)
		})
		if err != nil {
			return total, fmt.Errorf("apply log rows after %v: %w", cursor, err)
		}
		if n == 0 {
			return total, nil
		}
		total += n
		cursor = last
		if n < int64(batchSize) {
			return total, nil
		}
	}
	return total, nil
}

// PrefetchLog parses the log rows with after < (transaction_id, offset) <= upTo into a new
// unlogged table of schema named table, in the staging table's shape, for ApplyPrefetched
// to apply later, on another connection. Parsing the payloads is about half of a rebuild's
// work, and it does not depend on the projection's state, so a rebuild parses the next
// chunk on one core while the other applies the previous one. It returns the number of
// rows and does not commit.
func PrefetchLog(ctx context.Context, tx pgx.Tx, schema, table string, after, upTo eventlog.Position) (int64, error) {
	st, err := loadStatements()
	if err != nil {
		return 0, err
	}
	if err := UseSchema(ctx, tx, schema); err != nil {
		return 0, err
	}
	if err := PrepareConn(ctx, tx); err != nil { // the shape to copy
		return 0, err
	}
	target := pgx.Identifier{schema, table}.Sanitize()
	// UNLOGGED: a prefetched chunk is scratch data, recomputed if lost; no WAL for it.
	if _, err := tx.Exec(ctx, "CREATE UNLOGGED TABLE "+target+" (LIKE "+stageTable+")"); err != nil {
		return 0, fmt.Errorf("create prefetch table: %w", err)
	}
	prefetch, err := fillTemplate(st.stageLog, "stage", target)
	if err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, prefetch, logRange(after, upTo, math.MaxInt32)...)
	if err != nil {
		return 0, fmt.Errorf("prefetch log rows after %v: %w", after, err)
	}
	return tag.RowsAffected(), nil
}

// ApplyPrefetched applies the rows that PrefetchLog put in table to schema inside tx, set
// based as ApplyLog does, and drops the table. It returns the number of rows applied and
// does not commit.
func ApplyPrefetched(ctx context.Context, tx pgx.Tx, schema, table string) (int64, error) {
	st, err := prepareChunks(ctx, tx, schema)
	if err != nil {
		return 0, err
	}
	source := pgx.Identifier{schema, table}.Sanitize()
	n, _, err := applyChunk(ctx, tx, schema, st, truncateStage, func(b *pgx.Batch) {
		// LIKE gave the prefetch table the staging table's columns, in its order.
		b.Queue("INSERT INTO " + stageTable + " SELECT * FROM " + source)
	})
	if err != nil {
		return 0, fmt.Errorf("apply prefetched %s: %w", table, err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE "+source); err != nil {
		return 0, fmt.Errorf("drop prefetch table: %w", err)
	}
	return n, nil
}

// truncateStage empties the stage after a large chunk (see applyChunk).
const truncateStage = "TRUNCATE " + stageTable

// prepareChunks readies tx for applying big chunks: the staging table, and a work_mem
// for the chunk's sorts.
func prepareChunks(ctx context.Context, tx pgx.Tx, schema string) (*statements, error) {
	st, err := loadStatements()
	if err != nil {
		return nil, err
	}
	if schema == "" {
		return nil, errors.New("apply log rows: empty schema name")
	}
	// One round trip (no arguments: the simple protocol sends both statements at once): the
	// staging table, the search_path (as UseSchema), and a work_mem for the DISTINCT ON
	// sorts, which carry every registrant field of a chunk and spill to disk with the
	// default 4MB. Transaction-local (reverted at the end of the caller's transaction or
	// savepoint).
	setup := st.stageCreate + ";\nSELECT set_config('search_path', " + literal(searchPath(schema)) +
		", true), set_config('work_mem', " + literal(rebuildWorkMem) + ", true)"
	if _, err := tx.Exec(ctx, setup); err != nil {
		return nil, fmt.Errorf("prepare staging and search_path: %w", err)
	}
	return st, nil
}

// applyChunk stages one chunk (the statement stage queues fills the staging table) and
// applies it; it returns the number of staged rows and the log position of the last one.
//
// clear empties the stage first: stageClear (DELETE) when it holds nothing of this
// transaction yet (ON COMMIT DELETE ROWS empties it at every commit), which keeps the
// cached plans of the statements over it, so a small live batch is not re-planned;
// truncateStage after a large chunk of the same transaction, whose dead rows would bloat
// the scans (TRUNCATE also invalidates the cached plans, so each large chunk is planned
// against the current sizes of the target tables). No ANALYZE of the chunk: the projection
// statements are written so that their plans do not hinge on the stage's statistics
// (sorts, not joins, over the stage).
func applyChunk(ctx context.Context, tx pgx.Tx, schema string, st *statements, clear string, stage func(*pgx.Batch)) (int64, eventlog.Position, error) {
	b := &pgx.Batch{}
	b.Queue(clear)
	stage(b)
	var n, created, changed, registrant, webinarSnap, sessionSnap, attendanceSnap, registrantSnap int64
	var lastTx string
	var last eventlog.Position
	b.Queue(st.stageLast).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&n, &created, &changed, &registrant, &webinarSnap, &sessionSnap, &attendanceSnap, &registrantSnap,
			&last.Epoch, &lastTx, &last.Offset)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, last, fmt.Errorf("stage: %w", err)
	}
	if n == 0 {
		return 0, last, nil
	}
	txid, err := strconv.ParseUint(lastTx, 10, 64)
	if err != nil {
		return 0, last, fmt.Errorf("parse transaction id %q: %w", lastTx, err)
	}
	last.TxID = txid
	// Only the statements the chunk has events for: each costs a scan of the stage
	// even when it has nothing to do, and most chunks hold registrant events only.
	b = &pgx.Batch{}
	queueProjections(b, st, map[string]bool{
		nameCreated: created > 0,
		nameChanged: changed > 0,
		nameAdded:   registrant > 0,
		// Without these, the live projector's fast path and every rebuild would skip
		// reconcile's snapshots (only one-event Apply calls projected them).
		nameWebinarSnapshot:    webinarSnap > 0,
		nameSessionSnapshot:    sessionSnap > 0,
		nameAttendanceSnapshot: attendanceSnap > 0,
		nameRegistrantSnapshot: registrantSnap > 0,
	})
	if b.Len() > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return 0, last, fmt.Errorf("apply to %s: %w", schema, err)
		}
	}
	return n, last, nil
}

// logRange is the arguments of stage_from_log.sql: the range (after, upTo] and a row limit.
func logRange(after, upTo eventlog.Position, limit int) []any {
	return []any{after.Epoch, strconv.FormatUint(after.TxID, 10), after.Offset,
		upTo.Epoch, strconv.FormatUint(upTo.TxID, 10), upTo.Offset, limit}
}

// literal quotes s as an SQL string literal (standard_conforming_strings: only ' doubles).
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
