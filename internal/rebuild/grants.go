package rebuild

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ReaderRole is the database role that may read the analytics schema and nothing else
// (Grafana's data source, BI tools). Migration 0002_roles creates it.
const ReaderRole = "turnout_reader"

// grantReaderSQL opens a freshly created schema to ReaderRole. Grants belong to the schema
// and its tables, so a rebuild, which drops analytics and renames its shadow into place,
// would otherwise leave readers with "permission denied" after every swap. Granting on the
// shadow, in the transaction that creates it, means the schema that is swapped in already
// carries them. The views run with their owner's (the projector's) rights, so SELECT on
// them is all a reader needs. Tables created later in the schema are covered too, by the
// default privileges of the role that creates them.
//
// A cluster without ReaderRole (a database not migrated by Turnout, e.g. in a test that
// builds projections by hand) gets no grants rather than an error.
func grantReaderSQL(schema string) string {
	return fmt.Sprintf(`
DO $grant$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'turnout_reader') THEN
		GRANT USAGE ON SCHEMA %[1]s TO turnout_reader;
		GRANT SELECT ON ALL TABLES IN SCHEMA %[1]s TO turnout_reader;
		ALTER DEFAULT PRIVILEGES IN SCHEMA %[1]s GRANT SELECT ON TABLES TO turnout_reader;
	END IF;
END
$grant$`, pgx.Identifier{schema}.Sanitize())
}

// grantReader runs grantReaderSQL for schema inside tx.
func grantReader(ctx context.Context, tx pgx.Tx, schema string) error {
	if _, err := tx.Exec(ctx, grantReaderSQL(schema)); err != nil {
		return fmt.Errorf("grant %s read access to %s: %w", ReaderRole, schema, err)
	}
	return nil
}
