-- The events passed by the caller of a live apply: $1 offsets, $2 receive times, $3 raw
-- payloads. OFFSET 0 keeps the subquery from being flattened into stage_insert.sql, which
-- would parse each payload once per field.
SELECT NULL::integer AS epoch, NULL::xid8 AS tx, u.pos, u.received_at, _jsonb(u.payload::json) AS p
FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS u (pos, received_at, payload)
OFFSET 0
