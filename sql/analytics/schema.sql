-- The analytics schema: tables, created in the schema first on search_path (Create sets it:
-- the same file builds analytics and a rebuild's shadow schema; names stay unqualified).
--
-- Every table is a commutative last-writer-wins projection of the event log: each row (or
-- each "layer" of a row) remembers the order key of the event that wrote it and is only
-- overwritten by an event with a greater key, so applying events in any order, in any
-- batching, any number of times, gives the same rows. Columns named *_offset, *_ts, src_*,
-- stub/created/changed/rest and the *_count counters are internal bookkeeping.
CREATE TABLE _meta (
    version    text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Key and string helpers of the webinars' generated columns (so they come before the table;
-- the lenient parsers are further down). IMMUTABLE, and SQL-standard bodies, which a
-- generated column may call and which survive a rebuild's rename of the schema.
--
-- _key is the canonical text of a GoTo key sent as a JSON integer or a string of digits (as
-- internal/domain's canonicalKey: at most 19 digits, no leading zeros); NULL for anything
-- else. Webhook keys are stored as sent; this is for the REST items, whose keys come either
-- way (openapi.yaml's Key).
CREATE FUNCTION _key(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN jsonb_typeof(v) IN ('number', 'string') AND (v #>> '{}') ~ '^\d{1,19}$'
                THEN coalesce(nullif(ltrim(v #>> '{}', '0'), ''), '0') END;
END;

-- _string is the text of a JSON string, NULL for any other JSON value (a number, an object):
-- a REST field of the wrong type is unknown, not its JSON text.
CREATE FUNCTION _string(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' END;
END;

-- One row per webinar. The public columns are generated from four layers, so the outcome
-- does not depend on which layer arrived first:
--   changed: payload of the webinar.changed with the greatest log offset (a full webinar state;
--            it carries no timestamp, so log order is all there is)
--   created: payload of the webinar.created with the greatest log offset
--   rest:    the REST item (payload.snapshot) of reconcile's turnout.webinar.snapshot with the
--            greatest log offset, for webinars whose webinar.created was missed. Its names
--            differ from the webhooks' (subject is the title) and its keys may be integers.
--   stub:    webinar fields of the registrant event with the greatest (timestamp, offset),
--            for webinars we only know from registrant events
-- Each public column is coalesce(changed, created, rest, stub): webhooks always win, as they
-- do a registrant's attributes (rest_registrants.sql); REST fills in what no webinar webhook
-- told us, and beats the registrant events' copies. status is a webhook fact only: the REST
-- item has none (and the API lists no deleted webinar), so a webinar known from REST and
-- registrant events alone has status NULL, like a stub.
CREATE TABLE webinars (
    webinar_key      text PRIMARY KEY,
    title            text GENERATED ALWAYS AS (coalesce(changed ->> 'webinarTitle', created ->> 'webinarTitle', _string(rest -> 'subject'), stub ->> 'webinarTitle')) STORED,
    description      text GENERATED ALWAYS AS (coalesce(changed ->> 'description', created ->> 'description', _string(rest -> 'description'))) STORED,
    organizer_key    text GENERATED ALWAYS AS (coalesce(changed ->> 'organizerKey', created ->> 'organizerKey', _key(rest -> 'organizerKey'))) STORED,
    account_key      text GENERATED ALWAYS AS (coalesce(changed ->> 'accountKey', created ->> 'accountKey')) STORED,
    experience_type  text GENERATED ALWAYS AS (coalesce(changed ->> 'experienceType', created ->> 'experienceType', _string(rest -> 'experienceType'), stub ->> 'experienceType')) STORED,
    recurrence_type  text GENERATED ALWAYS AS (coalesce(changed ->> 'recurrenceType', created ->> 'recurrenceType', stub ->> 'recurrenceType')) STORED,
    recurrence_key   text GENERATED ALWAYS AS (coalesce(changed ->> 'recurrenceKey', created ->> 'recurrenceKey', _key(rest -> 'recurrenceKey'))) STORED,
    time_zone        text GENERATED ALWAYS AS (coalesce(changed ->> 'timeZone', created ->> 'timeZone', _string(rest -> 'timeZone'))) STORED,
    status           text GENERATED ALWAYS AS (CASE
                         WHEN changed IS NOT NULL THEN coalesce(changed ->> 'status', 'UPDATED')
                         WHEN created IS NOT NULL THEN coalesce(created ->> 'status', 'NEW')
                     END) STORED,
    -- Set by the statement that writes the created/changed layer: the text -> timestamptz
    -- cast is not immutable, so it cannot be a generated column.
    created_at       timestamptz,
    updated_at       timestamptz,
    -- Counters behind webinar_conversion, maintained incrementally by the apply statements
    -- (a COUNT(DISTINCT) over a million registrants is too slow for a dashboard).
    registrant_count bigint NOT NULL DEFAULT 0,
    attendee_count   bigint NOT NULL DEFAULT 0,
    stub             jsonb,
    stub_ts          timestamptz,
    stub_offset      bigint,
    created          jsonb,
    created_offset   bigint,
    changed          jsonb,
    changed_offset   bigint,
    rest             jsonb,
    rest_offset      bigint
);

-- The current schedule of each webinar: the times[] of the winning layer (changed, else
-- created, else rest), rewritten whenever a webinar event or webinar snapshot for the
-- webinar is applied.
CREATE TABLE webinar_times (
    webinar_key text NOT NULL,
    start_time  timestamptz,
    end_time    timestamptz
);
CREATE INDEX webinar_times_webinar_key ON webinar_times (webinar_key);

-- One row per (webinar, registrant) seen in registrant.added or registrant.joined.
-- Attributes come from the winning event by (src_rank, src_ts, src_offset): any
-- registrant.added (rank 2) beats any registrant.joined (rank 1); then the later event
-- timestamp (missing = oldest); then the later log offset.
CREATE TABLE registrants (
    webinar_key         text NOT NULL,
    registrant_key      text NOT NULL,
    email               text,
    first_name          text,
    last_name           text,
    organization        text,
    job_title           text,
    phone               text,
    industry            text,
    comments            text,
    registration_date   timestamptz,
    registration_source text,
    status              text,
    join_url            text,
    responses           jsonb,
    -- Earliest join_time over all joins of the registrant; NULL = never joined.
    first_join          timestamptz,
    src_rank            smallint    NOT NULL,
    src_ts              timestamptz NOT NULL,
    src_offset          bigint      NOT NULL,
    PRIMARY KEY (webinar_key, registrant_key)
);

-- One row per registrant.joined event (rejoins are separate rows). eventKey is unique per
-- event, so it is the identity that makes re-applying a join a no-op.
CREATE TABLE joins (
    event_key      text PRIMARY KEY,
    log_offset     bigint      NOT NULL,
    webinar_key    text        NOT NULL,
    session_key    text,
    registrant_key text        NOT NULL,
    join_time      timestamptz NOT NULL
);

-- Log rows the projector could not apply; the stream went on without them. Position (epoch,
-- transaction_id, offset), GoTo's eventKey and eventName, and the error's SQLSTATE and
-- message (never payload values: see internal/projections/parked.go).
CREATE TABLE _parked (
    epoch          integer     NOT NULL,
    transaction_id xid8        NOT NULL,
    "offset"       bigint      NOT NULL,
    event_key      text        NOT NULL,
    event_name     text        NOT NULL,
    error          text        NOT NULL,
    attempts       integer     NOT NULL,
    parked_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (epoch, transaction_id, "offset")
);
COMMENT ON TABLE _parked IS
    'Log rows the projector could not apply; the stream went on without them. Position, GoTo eventKey and eventName, last error.';

-- Lenient parsing. The projections never fail an accepted event because of a field value
-- (issue 10): a value PostgreSQL cannot take is NULL, and the rest of the event applies.
-- Each has a fast path for the shapes live GoTo sends, which cannot fail, and a slow path
-- (plpgsql, whose exception block costs a subtransaction) for everything else.

-- _timestamptz parses an ISO-8601 (or any PostgreSQL-readable) time; NULL when it does not
-- parse or is out of PostgreSQL's range (a year 0 that Go accepts, say). The fast path's
-- pattern only admits values that are valid: years 1900-2099, days up to 28.
CREATE FUNCTION _timestamptz_slow(v text) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN v::timestamptz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$$;
-- SQL-standard bodies (BEGIN ATOMIC) are parsed at creation and refer to what they call by
-- identity, not by name: they keep working when a rebuild renames the schema.
CREATE FUNCTION _timestamptz(v text) RETURNS timestamptz
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE
        WHEN v IS NULL THEN NULL
        WHEN v ~ '^(19|20)\d\d-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])[T ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?(Z|[+-](0\d|1[0-4]):?[0-5]\d)$'
            THEN v::timestamptz
        ELSE _timestamptz_slow(v)
    END;
END;

-- _epoch_ms turns epoch milliseconds (joinTime) into a time; NULL unless it is a whole
-- number of at most 15 digits (about 31,000 years: always in range).
CREATE FUNCTION _epoch_ms(v text) RETURNS timestamptz
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN v ~ '^\d{1,15}$' THEN timestamptz 'epoch' + v::bigint * interval '1 millisecond' END;
END;

-- _jsonb converts a stored payload (json: the delivery's bytes) to jsonb. The one thing the
-- log's json keeps and jsonb refuses is a number beyond numeric's range (1e1000000): such a
-- number becomes null and the event applies. (\u0000 and unpaired surrogates never reach
-- here: the log's generated columns already refuse them.)
CREATE FUNCTION _jsonb_slow(v json) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    BEGIN
        RETURN v::jsonb;
    EXCEPTION WHEN numeric_value_out_of_range THEN
        NULL; -- repaired below
    END;
    RETURN regexp_replace(v::text, '-?\d+(\.\d+)?[eE][+-]?\d{5,}', 'null', 'g')::jsonb;
END
$$;
CREATE FUNCTION _jsonb(v json) RETURNS jsonb
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN v::text !~ '[eE][+-]?\d{5}' THEN v::jsonb ELSE _jsonb_slow(v) END;
END;
