#!/bin/sh
# Runs once, when the compose stack's PostgreSQL initialises an empty data directory:
# creates Turnout's service roles WITH LOGIN and the passwords from the environment,
# before the migrate service runs. Migration 0002_roles then finds them and leaves them as
# they are (it only creates missing roles, NOLOGIN), and grants their privileges.
# Outside compose, operators do the same by hand: see docs/operations.md.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v ingest_password="$TURNOUT_INGEST_PASSWORD" \
    -v projector_password="$TURNOUT_PROJECTOR_PASSWORD" \
    -v reader_password="$TURNOUT_READER_PASSWORD" \
    -v reconcile_password="${TURNOUT_RECONCILE_PASSWORD:-reconcile}" <<'SQL'
CREATE ROLE turnout_ingest    LOGIN PASSWORD :'ingest_password';
CREATE ROLE turnout_projector LOGIN PASSWORD :'projector_password';
CREATE ROLE turnout_reader    LOGIN PASSWORD :'reader_password';
CREATE ROLE turnout_reconcile LOGIN PASSWORD :'reconcile_password';
SQL
