-- webinar_times is derived from the webinars row, not from the event: delete and re-derive
-- it for every webinar the staged webinar events (and webinar snapshots) touched (two statements, because a
-- DELETE and an INSERT of the same rows in one statement have no defined order).
DELETE FROM webinar_times t
USING (SELECT DISTINCT s.wk AS webinar_key
       FROM pg_temp.turnout_stage s
       WHERE s.name IN ('webinar.created', 'webinar.changed', 'turnout.webinar.snapshot')) k
WHERE t.webinar_key = k.webinar_key
