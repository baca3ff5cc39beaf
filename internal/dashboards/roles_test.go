package dashboards

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/projector"
)

// TestRoles checks what the roles of migrations 0002, 0005 and 0008 may and may not do, on a
// database the pipeline filled while connected as those roles (so ingest's appends and the
// projector's two rebuilds, with their schema swap through the owner's functions, already
// succeeded under them, without CREATE on the database).
func TestRoles(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx := t.Context()

	var stored, webinars, owned int
	if err := p.admin.QueryRow(ctx, `SELECT count(*) FROM `+eventlog.Table).Scan(&stored); err != nil {
		t.Fatalf("count log rows: %v", err)
	}
	if stored != len(p.scenario.Events) {
		t.Errorf("turnout_ingest stored %d of %d deliveries", stored, len(p.scenario.Events))
	}
	if err := p.admin.QueryRow(ctx, `SELECT count(*) FROM pg_namespace
		WHERE nspname = 'analytics' AND nspowner = 'turnout_projector'::regrole`).Scan(&owned); err != nil || owned != 1 {
		t.Errorf("analytics is not owned by turnout_projector (err %v)", err)
	}
	reader := roleConn(t, p.url, "turnout_reader")
	if err := reader.QueryRow(ctx, `SELECT count(*) FROM analytics.webinar_conversion`).Scan(&webinars); err != nil {
		t.Fatalf("turnout_reader cannot read analytics.webinar_conversion after a rebuild: %v", err)
	}
	if webinars != len(p.scenario.Expected) {
		t.Errorf("turnout_reader sees %d webinars, want %d", webinars, len(p.scenario.Expected))
	}

	denied := []struct {
		role, sql string
	}{
		{"turnout_reader", `SELECT count(*) FROM ` + eventlog.Table},
		{"turnout_reader", `SELECT count(*) FROM ingest_quarantine`},
		{"turnout_reader", `SELECT count(*) FROM ` + eventlog.OffsetsTable},
		{"turnout_reader", `UPDATE analytics.webinars SET registrant_count = 0`},
		{"turnout_reader", `DELETE FROM analytics.registrants`},
		{"turnout_reader", `CREATE TABLE analytics.mine (a int)`},
		{"turnout_reader", `CREATE SCHEMA mine`},
		{"turnout_reader", `CREATE TEMP TABLE mine (a int)`},
		{"turnout_reader", `SELECT public.turnout_create_schema('analytics_retired')`},
		{"turnout_reader", `CALL public.turnout_hand_over_analytics()`},
		{"turnout_ingest", `SELECT public.turnout_rename_schema('analytics', 'analytics_retired')`},
		{"turnout_ingest", `SELECT payload FROM ` + eventlog.Table},
		{"turnout_ingest", `UPDATE ` + eventlog.Table + ` SET metadata = '{}'`},
		{"turnout_ingest", `SELECT body FROM ingest_quarantine`},
		{"turnout_ingest", `SELECT received_at FROM ingest_event_keys`},
		{"turnout_ingest", `DELETE FROM ingest_event_keys`},
		{"turnout_ingest", `SELECT count(*) FROM analytics.webinar_conversion`},
		{"turnout_ingest", `UPDATE ` + eventlog.OffsetsTable + ` SET consumer_group = consumer_group`},
		{"turnout_projector", `INSERT INTO ` + eventlog.Table + ` (uuid, payload, transaction_id) VALUES ('x', '{}', pg_current_xact_id())`},
		{"turnout_projector", `SELECT count(*) FROM ingest_quarantine`},
		{"turnout_projector", `DELETE FROM ingest_event_keys`},
		{"turnout_projector", `CREATE SCHEMA mine`},
		{"turnout_projector", `CREATE SCHEMA postgres`},
		{"turnout_projector", `ALTER SCHEMA analytics RENAME TO mine`},
		{"turnout_ingest", `CREATE SCHEMA mine`},
	}
	for _, tt := range denied {
		t.Run(tt.role+": "+tt.sql, func(t *testing.T) {
			conn := roleConn(t, p.url, tt.role)
			_, err := conn.Exec(ctx, tt.sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("want insufficient_privilege (42501), got %v", err)
			}
		})
	}
}

// TestLiveProjectorAsItsRole runs the live projector (the watermill-sql subscriber and its
// offsets) connected as turnout_projector, on top of the rebuilt schema, until a new log
// row shows up in analytics.
func TestLiveProjectorAsItsRole(t *testing.T) {
	t.Parallel()
	p := newPipeline(t)
	ctx, cancel := context.WithCancel(t.Context())
	proj := projector.New(rolePool(t, p.url, "turnout_projector"), projector.Config{}, slog.New(slog.DiscardHandler),
		projector.NewMetrics(prometheus.NewRegistry()))
	done := make(chan error, 1)
	go func() { done <- proj.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("live projector as turnout_projector: %v", err)
		}
	})

	const webinar = "9100000000000000101"
	want := p.scenario.Expected[webinar].Registrants + 1
	if _, err := p.admin.Exec(ctx, `
		INSERT INTO `+eventlog.Table+` (uuid, payload, metadata, transaction_id)
		VALUES (gen_random_uuid()::text, $1::json, '{"signature_verified":"true"}', pg_current_xact_id())`,
		`{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"live-role-test",
		  "webinarKey":9100000000000000101,"registrantKey":5199999999999999999,"email":"late@example.com"}`); err != nil {
		t.Fatalf("append an event: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int
		err := p.admin.QueryRow(ctx, `SELECT registrants FROM analytics.webinar_conversion WHERE webinar_key = $1`, webinar).Scan(&got)
		if err != nil {
			t.Fatalf("read conversion: %v", err)
		}
		if got == want {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("live projector stopped: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registrants = %d after 30s, want %d", got, want)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}
