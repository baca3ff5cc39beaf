package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projector"
)

// newCluster starts a PostgreSQL cluster of its own for the test, the way make test starts
// one (scripts/with-postgres.sh, with DATABASE_URL unset), and returns its admin URL. The
// cluster is stopped and deleted when the test ends.
func newCluster(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs("../../scripts/with-postgres.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script, "bash", "-c", `echo "$DATABASE_URL"; exec sleep 3600`)
	cmd.Env = append(slicesWithout(os.Environ(), "DATABASE_URL="), "PG_DURABLE=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // stopped as a group: the script cleans up
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a cluster: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	select {
	case u, ok := <-line:
		if !ok || !strings.HasPrefix(u, "postgres://") {
			t.Fatalf("the new cluster printed %q, want its URL", u)
		}
		return u
	case <-time.After(120 * time.Second):
		t.Fatal("the new cluster did not start within 120s")
	}
	return ""
}

func slicesWithout(env []string, prefix string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// withDatabase returns u naming database db.
func withDatabase(t *testing.T, u, db string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Path = "/" + db
	return parsed.String()
}

// burnXIDs makes the cluster hand out n transaction ids, so that its log rows carry xids a
// freshly created cluster has not reached.
func burnXIDs(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$`, n)); err != nil {
		t.Fatalf("burn transaction ids: %v", err)
	}
}

// The documented backup (pg_dump of everything but analytics) restored into a new cluster,
// whose transaction counter is far behind the xids in the log: the projector builds the
// same figures as the source's, and deliveries after the restore are projected too, after
// the restored ones (a new epoch of the log).
func TestDumpRestoreIntoANewCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	source, srcURL := pgtest.Pool(t)
	burnXIDs(t, source, 30_000)
	g := newGenerator(t, 11)
	appendEvents(t, source, g.stream(6, 15), 9)
	stop := startLive(t, testEnv(srcURL))
	waitFor(t, 60*time.Second, "the source projector to catch up", func() (bool, error) { return consumerCaughtUp(ctx, source) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := publicFigures(t, source)
	if len(want["registrants"]) == 0 {
		t.Fatal("the source has no registrants")
	}

	dumpFile := filepath.Join(t.TempDir(), "turnout.dump")
	if out, err := exec.CommandContext(ctx, "pg_dump", "--format=custom", "--exclude-schema=analytics*", "-f", dumpFile, srcURL).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	admin := newCluster(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var fresh uint64
	if err := conn.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&fresh); err != nil {
		t.Fatal(err)
	}
	if fresh > 30_000 {
		t.Fatalf("the new cluster is at xid %d: it would see the restored rows even without epochs", fresh)
	}
	// Roles are cluster-wide and not in the dump: created first, as docs/operations.md says.
	for _, r := range []string{"turnout_ingest", "turnout_projector", "turnout_reader", "turnout_reconcile"} {
		if _, err := conn.Exec(ctx, "CREATE ROLE "+r+" NOLOGIN"); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.CommandContext(ctx, "pg_restore", "--create", "--exit-on-error", "-d", admin, dumpFile).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	dbName, err := url.Parse(srcURL)
	if err != nil {
		t.Fatal(err)
	}
	restoredURL := withDatabase(t, admin, strings.TrimPrefix(dbName.Path, "/"))
	restored, err := pgxpool.New(ctx, restoredURL)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()

	env := testEnv(restoredURL)
	startLive(t, env) // builds analytics from the restored log
	waitFor(t, 60*time.Second, "the restored projector to catch up", func() (bool, error) { return consumerCaughtUp(ctx, restored) })
	assertSameTables(t, "restored figures vs the source's", publicFigures(t, restored), want)

	// New deliveries after the restore are projected too.
	appendEvents(t, restored, g.stream(2, 5), 3)
	waitFor(t, 60*time.Second, "the projector to apply deliveries made after the restore", func() (bool, error) {
		return consumerCaughtUp(ctx, restored)
	})
	after := publicFigures(t, restored)
	if len(after["webinars"]) != len(want["webinars"])+2 {
		t.Errorf("%d webinars after two more were delivered, want %d", len(after["webinars"]), len(want["webinars"])+2)
	}
	assertSameTables(t, "restored live vs its log", dump(t, restored, projector.Schema), reference(t, restored))
	st := status(t, env)
	if st[0].Position.Epoch != 2 {
		t.Errorf("live position after the restore in epoch %d, want 2 (the new cluster's)", st[0].Position.Epoch)
	}
}

func publicFigures(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	d, err := projections.DumpPublic(context.Background(), pool, projector.Schema)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
