package reconcile

// SQL of reconcile's progress tables (migrations/0006_reconcile.up.sql).
const (
	// findUnfinishedSQL finds the newest run of a kind that did not finish, to resume it with
	// its own window. $2 is the window's length in seconds; NULL matches any length.
	findUnfinishedSQL = `
SELECT id, from_time, to_time FROM reconcile_runs
WHERE kind = $1 AND finished_at IS NULL
  AND ($2::bigint IS NULL OR extract(epoch FROM to_time - from_time)::bigint = $2)
ORDER BY id DESC LIMIT 1`

	startRunSQL = `
INSERT INTO reconcile_runs (kind, from_time, to_time) VALUES ($1, $2, $3) RETURNING id`

	finishRunSQL = `UPDATE reconcile_runs SET finished_at = now() WHERE id = $1`

	// doneSQL lists the webinars a run has finished.
	doneSQL = `SELECT organizer_key, webinar_key FROM reconcile_done WHERE run_id = $1`

	// markDoneSQL records a finished webinar, in the transaction that appended its events.
	markDoneSQL = `
INSERT INTO reconcile_done (run_id, organizer_key, webinar_key, calls, appended) VALUES ($1, $2, $3, $4, $5)`

	// lastFinishedSQL is when the newest finished run of any of the kinds ended, and the end
	// of its window.
	lastFinishedSQL = `
SELECT finished_at, to_time FROM reconcile_runs
WHERE kind = ANY($1) AND finished_at IS NOT NULL
ORDER BY finished_at DESC LIMIT 1`
)
