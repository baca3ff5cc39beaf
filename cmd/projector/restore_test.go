package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
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
	"github.com/turnout-analytics/turnout/internal/projections/projectionstest"
	"github.com/turnout-analytics/turnout/internal/projector"
	"github.com/turnout-analytics/turnout/migrations"
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
	d, err := projectionstest.DumpPublic(context.Background(), pool, projector.Schema)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// startCopy starts a PostgreSQL server on the data directory of a physical backup and
// returns its admin URL; it is stopped, and the directory removed, when the test ends.
func startCopy(t *testing.T, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	// initdb and the server refuse to run as root: as scripts/with-postgres.sh does.
	as := func(args ...string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "-R", "postgres", filepath.Dir(dir)).CombinedOutput(); err != nil {
			t.Fatalf("chown the copy: %v\n%s", err, out)
		}
		as = func(args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		}
	}
	opts := fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off", port, filepath.Dir(dir))
	if out, err := as("pg_ctl", "-D", dir, "-l", filepath.Join(filepath.Dir(dir), "server.log"), "-w", "-t", "120", "-o", opts, "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(dir), "server.log"))
		t.Fatalf("start the copy: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { _ = as("pg_ctl", "-D", dir, "-m", "immediate", "stop").Run() })
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
}

// A physical backup (pg_basebackup) started as a cluster of its own keeps the source's
// system identifier and xids: the log stays in its epoch, the projector carries on from its
// position with the same figures, and new deliveries are projected.
func TestBaseBackupCarriesOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := newCluster(t)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE turnout"); err != nil {
		t.Fatal(err)
	}
	srcURL := withDatabase(t, admin, "turnout")
	if err := migrations.Up(srcURL); err != nil {
		t.Fatal(err)
	}
	source, err := pgxpool.New(ctx, srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	g := newGenerator(t, 13)
	appendEvents(t, source, g.stream(4, 10), 7)
	stop := startLive(t, testEnv(srcURL))
	waitFor(t, 60*time.Second, "the source projector to catch up", func() (bool, error) { return consumerCaughtUp(ctx, source) })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := publicFigures(t, source)

	parent, err := os.MkdirTemp("", "turnout-basebackup-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "data")
	if out, err := exec.CommandContext(ctx, "pg_basebackup", "-D", dir, "-d", admin, "-X", "stream", "-c", "fast").CombinedOutput(); err != nil {
		t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	copyURL := withDatabase(t, startCopy(t, dir), "turnout")
	copied, err := pgxpool.New(ctx, copyURL)
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()

	env := testEnv(copyURL)
	startLive(t, env)
	assertSameTables(t, "the copy's figures vs the source's", publicFigures(t, copied), want)
	appendEvents(t, copied, g.stream(2, 5), 3)
	waitFor(t, 60*time.Second, "the copy's projector to apply new deliveries", func() (bool, error) { return consumerCaughtUp(ctx, copied) })
	assertSameTables(t, "the copy's live vs its log", dump(t, copied, projector.Schema), reference(t, copied))
	if st := status(t, env); st[0].Position.Epoch != 1 {
		t.Errorf("position after a physical copy in epoch %d, want 1 (the same cluster identity)", st[0].Position.Epoch)
	}
}
