-- The analytics schema: views over what reconcile learned from the REST reporting API.
-- Created after views.sql.

-- Per (webinar, session, registrant): seconds attended and their share of the session's
-- actual length (NULL when the session's times are not known yet).
CREATE VIEW engagement AS
SELECT a.webinar_key,
       a.session_key,
       a.registrant_key,
       a.attendance_seconds AS seconds_attended,
       s.start_time         AS session_start,
       s.end_time           AS session_end,
       round(a.attendance_seconds / nullif(extract(epoch FROM s.end_time - s.start_time), 0), 4) AS share_of_session
FROM session_attendees a
LEFT JOIN sessions s ON s.webinar_key = a.webinar_key AND s.session_key = a.session_key;
