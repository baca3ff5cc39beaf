-- A rebuild's position in its shadow schema: one row, the last log position applied. It
-- exists only while the schema is a shadow (the swap drops it), which is how an
-- interrupted rebuild is told from a finished one.
CREATE TABLE _progress (epoch integer NOT NULL, transaction_id xid8 NOT NULL, "offset" bigint NOT NULL);
INSERT INTO _progress VALUES (0, '0', 0);
