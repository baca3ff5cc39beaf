-- Parks one log row: $1..$3 its position, $4 eventKey, $5 eventName, $6 the error, $7 the
-- attempts made. A row parked again (seen twice across a restart) keeps its first record.
INSERT INTO _parked (epoch, transaction_id, "offset", event_key, event_name, error, attempts)
VALUES ($1, $2::text::xid8, $3, $4, $5, $6, $7)
ON CONFLICT DO NOTHING
