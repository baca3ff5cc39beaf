-- The analytics schema: views for analysts and Grafana. Views name only tables of the same
-- schema (unqualified, resolved through search_path when they are created, and bound to
-- those tables from then on), so a shadow schema can be built and then renamed into place.

-- Registrants, attendees and conversion per webinar, from the maintained counters, so it
-- answers in constant time per webinar however many registrants there are. Registrants
-- DENIED or CANCELLED are not counted as registrants (nor in the rate's denominator); the
-- few registrants whose status sets them apart are counted through a partial index.
CREATE VIEW webinar_conversion AS
SELECT w.webinar_key,
       w.title            AS webinar_title,
       w.status,
       w.registrant_count - x.excluded AS registrants,
       w.attendee_count   AS attendees,
       CASE WHEN w.registrant_count - x.excluded > 0
            THEN w.attendee_count::numeric / (w.registrant_count - x.excluded) END AS conversion_rate,
       x.waiting,
       x.denied,
       -- From the REST reporting API (reconcile): per attendance of a session; NULL until
       -- a session of the webinar is reconciled.
       t.avg_attendance_seconds,
       t.total_attendance_seconds
FROM webinars w
LEFT JOIN LATERAL (
    SELECT round(avg(a.attendance_seconds), 1) AS avg_attendance_seconds,
           sum(a.attendance_seconds)           AS total_attendance_seconds
    FROM session_attendees a
    WHERE a.webinar_key = w.webinar_key
) t ON true
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE r.status IN ('DENIED', 'CANCELLED')) AS excluded,
           count(*) FILTER (WHERE r.status = 'WAITING')                AS waiting,
           count(*) FILTER (WHERE r.status = 'DENIED')                 AS denied
    FROM registrants r
    WHERE r.webinar_key = w.webinar_key AND r.status IN ('DENIED', 'CANCELLED', 'WAITING')
) x;

-- The same per registration source ("share your webinar" attribution). Registrants known
-- only from a join have no source (NULL). DENIED and CANCELLED are not registrants here either.
CREATE VIEW conversion_by_source AS
SELECT r.webinar_key,
       r.registration_source,
       count(*) FILTER (WHERE r.status IS NULL OR r.status NOT IN ('DENIED', 'CANCELLED')) AS registrants,
       count(r.first_join) AS attendees,
       CASE WHEN count(*) FILTER (WHERE r.status IS NULL OR r.status NOT IN ('DENIED', 'CANCELLED')) > 0
            THEN count(r.first_join)::numeric / count(*) FILTER (WHERE r.status IS NULL OR r.status NOT IN ('DENIED', 'CANCELLED'))
       END AS conversion_rate,
       count(*) FILTER (WHERE r.status = 'WAITING') AS waiting,
       count(*) FILTER (WHERE r.status = 'DENIED')  AS denied
FROM registrants r
GROUP BY r.webinar_key, r.registration_source;

-- Joins are the webhooks' registrant.joined and the join times of the REST reporting API's
-- attendance intervals (reconcile): an attendee whose registrant.joined was missed still
-- counts, as in webinar_conversion.
CREATE VIEW session_attendance AS
WITH j AS (
    SELECT webinar_key, session_key, registrant_key, join_time FROM joins
    UNION ALL
    SELECT webinar_key, session_key, registrant_key, join_time FROM attendance
    UNION ALL -- an attendee GoTo reports without intervals still attended
    SELECT webinar_key, session_key, registrant_key, NULL FROM session_attendees
)
SELECT j.webinar_key,
       j.session_key,
       count(DISTINCT j.registrant_key) AS attendees,
       min(j.join_time)                 AS first_join,
       max(j.join_time)                 AS last_join,
       -- From the REST reporting API (reconcile); NULL until the session is reconciled.
       (SELECT round(avg(a.attendance_seconds), 1) FROM session_attendees a
        WHERE a.webinar_key = j.webinar_key AND a.session_key = j.session_key) AS avg_attendance_seconds,
       (SELECT sum(a.attendance_seconds) FROM session_attendees a
        WHERE a.webinar_key = j.webinar_key AND a.session_key = j.session_key) AS total_attendance_seconds
FROM j
GROUP BY j.webinar_key, j.session_key;

-- day is the UTC date of registration_date; registrants without one (known only from a
-- join, or registered without registrationDate) fall back to their first join.
CREATE VIEW registrations_daily AS
SELECT (coalesce(r.registration_date, r.first_join) AT TIME ZONE 'UTC')::date AS day,
       r.webinar_key,
       count(*)            AS registrations,
       count(r.first_join) AS attendees
FROM registrants r
GROUP BY 1, 2;

CREATE VIEW no_shows AS
SELECT r.webinar_key,
       r.registrant_key,
       r.email,
       r.first_name,
       r.last_name,
       r.registration_source,
       r.registration_date
FROM registrants r
WHERE r.first_join IS NULL;

-- One row per attendee and session: the first join in that session, against the scheduled
-- time range that contains it; when none does, the scheduled start nearest to the join in
-- either direction (so joining a few minutes early gives a small negative number rather
-- than the start of an earlier session of a sequence days before). scheduled_start is NULL
-- when the webinar has no known schedule.
CREATE VIEW time_to_join AS
SELECT f.webinar_key,
       f.registrant_key,
       f.session_key,
       s.start_time AS scheduled_start,
       f.first_join,
       extract(epoch FROM f.first_join - s.start_time) / 60 AS minutes_after_start
FROM (SELECT j.webinar_key, j.registrant_key, j.session_key, min(j.join_time) AS first_join
      FROM joins j
      GROUP BY j.webinar_key, j.registrant_key, j.session_key) f
LEFT JOIN LATERAL (
    SELECT t.start_time
    FROM webinar_times t
    WHERE t.webinar_key = f.webinar_key AND t.start_time IS NOT NULL
    ORDER BY coalesce(f.first_join >= t.start_time AND f.first_join < t.end_time, false) DESC,
             abs(extract(epoch FROM f.first_join - t.start_time)),
             t.start_time
    LIMIT 1
) s ON true;
