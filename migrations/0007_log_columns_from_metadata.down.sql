ALTER TABLE public.watermill_gotowebinar_events
    DROP COLUMN event_name,
    DROP COLUMN event_key,
    ADD COLUMN event_name text GENERATED ALWAYS AS (payload ->> 'eventName') STORED,
    ADD COLUMN event_key  text GENERATED ALWAYS AS (payload ->> 'eventKey') STORED;
