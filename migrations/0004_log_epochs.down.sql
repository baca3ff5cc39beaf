-- Back to the xid order. Rows of later epochs keep their xids; a log that spans a restore
-- cannot be ordered by xid alone, which is why 0004 exists.
ALTER TABLE watermill_offsets_gotowebinar_events DROP COLUMN last_processed_epoch;
ALTER TABLE watermill_gotowebinar_events DROP CONSTRAINT watermill_gotowebinar_events_pkey;
ALTER TABLE watermill_gotowebinar_events ADD PRIMARY KEY (transaction_id, "offset");
ALTER TABLE watermill_gotowebinar_events DROP COLUMN epoch;
DROP FUNCTION public.eventlog_range(integer, xid8, bigint, integer, xid8, bigint, bigint);
DROP FUNCTION public.eventlog_horizon();
DROP FUNCTION public.eventlog_epoch();
DROP TABLE eventlog_epochs;
