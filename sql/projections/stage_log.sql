-- Stages the next chunk of the log in log order: rows with ($1, $2) < (transaction_id,
-- "offset") <= ($3, $4), at most $5 of them. The range scan uses the log's primary key.
-- OFFSET 0 keeps the subquery from being flattened, which would parse each payload twice.
INSERT INTO pg_temp.turnout_stage (tx, pos, received_at, p, ts)
SELECT e.transaction_id, e."offset", e.received_at, e.p, coalesce((e.p ->> 'timestamp')::timestamptz, '-infinity')
FROM (SELECT l.transaction_id, l."offset", l.received_at, l.payload::jsonb AS p
      FROM watermill_gotowebinar_events l
      WHERE (l.transaction_id, l."offset") > ($1::text::xid8, $2::bigint)
        AND (l.transaction_id, l."offset") <= ($3::text::xid8, $4::bigint)
      ORDER BY l.transaction_id, l."offset"
      LIMIT $5
      OFFSET 0) e
