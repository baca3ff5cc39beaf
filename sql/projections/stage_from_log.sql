-- The next chunk of the log, in log order: rows with ($1, $2, $3) < (epoch, transaction_id,
-- "offset") <= ($4, $5, $6), at most $7 of them, through eventlog_range (migration 0004; an
-- inlined range scan of the log's primary key). OFFSET 0 keeps this subquery from being
-- flattened into the staging INSERT, which would parse each payload once per field (the
-- LIMIT inside eventlog_range does not: measured, 25 times slower).
SELECT l.epoch, l.transaction_id AS tx, l."offset" AS pos, l.received_at, _jsonb(l.payload) AS p
FROM public.eventlog_range($1::integer, $2::text::xid8, $3::bigint, $4::integer, $5::text::xid8, $6::bigint, $7::bigint) l
OFFSET 0
