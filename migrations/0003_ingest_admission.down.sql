DROP TABLE IF EXISTS ingest_unverified;
ALTER TABLE ingest_quarantine DROP COLUMN IF EXISTS admitted_by, DROP COLUMN IF EXISTS admitted_at;
