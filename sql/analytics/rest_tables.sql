-- The analytics schema: what reconcile learned from GoToWebinar's REST reporting API
-- (turnout.session.snapshot and turnout.attendance.snapshot events; see the README's "Event
-- log contract"). Created after schema.sql, before the views that read these tables.
--
-- Each row is the newest snapshot of its item in log order (src_offset): reconcile appends a
-- snapshot only when what it fetched changed, so the later one is the later fetch. Applying
-- the snapshots in any order, batching or number of times gives the same rows.

-- One row per session that has been reconciled: its actual start and end (webhooks only know
-- the schedule).
CREATE TABLE sessions (
    webinar_key          text        NOT NULL,
    session_key          text        NOT NULL,
    start_time           timestamptz,
    end_time             timestamptz,
    registrants_attended integer,
    src_offset           bigint      NOT NULL,
    PRIMARY KEY (webinar_key, session_key)
);

-- One row per (webinar, session, registrant) who attended a reconciled session: GoTo's
-- attendanceTimeInSeconds and the join/leave intervals it is the sum of.
CREATE TABLE session_attendees (
    webinar_key        text    NOT NULL,
    session_key        text    NOT NULL,
    registrant_key     text    NOT NULL,
    attendance_seconds integer NOT NULL,
    intervals          jsonb   NOT NULL,
    src_offset         bigint  NOT NULL,
    PRIMARY KEY (webinar_key, session_key, registrant_key)
);

-- One row per (webinar, session, registrant, interval): each time the attendee joined and
-- left, from the attendee's newest snapshot (a newer one replaces all of its rows).
CREATE TABLE attendance (
    webinar_key    text        NOT NULL,
    session_key    text        NOT NULL,
    registrant_key text        NOT NULL,
    join_time      timestamptz NOT NULL,
    leave_time     timestamptz
);
CREATE INDEX attendance_attendee ON attendance (webinar_key, session_key, registrant_key);

-- Registrants whose status the conversion views treat apart (DENIED and CANCELLED are not
-- counted as registrants; WAITING and DENIED are shown as columns of their own): a partial
-- index, so that webinar_conversion counts them per webinar without reading every
-- registrant. Not REST-specific (webhooks carry status too); here to keep schema.sql as is.
CREATE INDEX registrants_status_apart ON registrants (webinar_key)
    WHERE status IN ('DENIED', 'CANCELLED', 'WAITING');
