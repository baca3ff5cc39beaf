-- The next chunk of the log, in log order: rows with ($1, $2) < (transaction_id, "offset")
-- <= ($3, $4), at most $5 of them. The range scan uses the log's primary key. The subquery
-- is not flattened into stage_insert.sql (LIMIT), so each payload is parsed once.
SELECT l.transaction_id AS tx, l."offset" AS pos, l.received_at, l.payload::jsonb AS p
FROM watermill_gotowebinar_events l
WHERE (l.transaction_id, l."offset") > ($1::text::xid8, $2::bigint)
  AND (l.transaction_id, l."offset") <= ($3::text::xid8, $4::bigint)
ORDER BY l.transaction_id, l."offset"
LIMIT $5
