-- Stages events passed by the caller: $1 offsets, $2 receive times, $3 raw payloads.
-- OFFSET 0 keeps the subquery from being flattened, which would parse each payload twice.
INSERT INTO pg_temp.turnout_stage (pos, received_at, p, ts)
SELECT e.pos, e.received_at, e.p, coalesce((e.p ->> 'timestamp')::timestamptz, '-infinity')
FROM (SELECT u.pos, u.received_at, u.payload::jsonb AS p
      FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS u (pos, received_at, payload)
      OFFSET 0) e
