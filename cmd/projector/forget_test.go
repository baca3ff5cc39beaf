package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/domain"
	"github.com/turnout-analytics/turnout/internal/erasure"
	"github.com/turnout-analytics/turnout/internal/eventlog"
	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/projections"
	"github.com/turnout-analytics/turnout/internal/projections/projectionstest"
	"github.com/turnout-analytics/turnout/internal/projector"
)

// The person the forget tests erase: Grace Hopper, registered for webinars A and B.
const (
	graceEmail = "grace.hopper@example.com"
	graceA     = "7000001000000000001" // registrant key for webinar A
	graceB     = "7000001000000000002" // registrant key for webinar B
	webinarA   = "9100001000000000077"
	webinarB   = "9100001000000000078"
)

// personal are strings of Grace's that must be gone once she is forgotten (case-insensitive).
var personal = []string{"grace.hopper", "hopper", "grace", "navy", "+1 555 0100", "cobol"}

// seedPerson appends a shuffled stream of others plus Grace's events (added with every
// personal field, joined with and without email, email in varying case) and a neighbour
// whose address ends with hers, and quarantines four deliveries, returning their ids by
// name: "email" (her address), "keysA" (registration A's keys), "suffix" and "other".
func seedPerson(t *testing.T, pool *pgxpool.Pool) map[string]int64 {
	t.Helper()
	g := newGenerator(t, 11)
	events := g.stream(2, 6)
	grace := map[string]any{
		"firstName": "Grace", "lastName": "Hopper", "phone": "+1 555 0100", "organization": "US Navy",
		"jobTitle": "Rear Admiral", "industry": "Defense", "comments": "Ask me about COBOL",
		"responses": []map[string]string{{"question": "Why?", "answer": "Grace wants to learn"}},
	}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	num := func(s string) json.Number { return json.Number(s) }
	events = append(events,
		g.event("webinar_created", map[string]any{"webinarKey": num(webinarA), "webinarTitle": "A"}),
		g.event("webinar_created", map[string]any{"webinarKey": num(webinarB), "webinarTitle": "B"}),
		g.event("registrant_added", with(grace, "webinarKey", num(webinarA), "registrantKey", num(graceA),
			"email", "Grace.Hopper@Example.com", "registrationSource", "linkedin")),
		g.event("registrant_joined", with(grace, "webinarKey", num(webinarA), "registrantKey", num(graceA),
			"email", graceEmail, "sessionKey", num("28000001"), "joinTime", num("1772442000000"))),
		g.event("registrant_added", with(grace, "webinarKey", num(webinarB), "registrantKey", num(graceB),
			"email", graceEmail, "registrationSource", "email")),
		without(t, g.event("registrant_joined", with(grace, "webinarKey", num(webinarB), "registrantKey", num(graceB),
			"sessionKey", num("28000002"), "joinTime", num("1772442600000"))), "email"),
		// A neighbour on webinar A, who stays.
		g.event("registrant_added", map[string]any{"webinarKey": num(webinarA), "registrantKey": num("7000001000000000003"),
			"email": "neighbour@example.com", "registrationSource": "linkedin",
			// Her address in his free text, in another case: redacted when she is forgotten by email.
			"comments": "colleague of Grace.Hopper@Example.com, ask her"}),
	)
	appendEvents(t, pool, events, 9)

	quarantine := []struct {
		name string
		body []byte
	}{
		// Her email, upper case, in a body that is not even UTF-8.
		{"email", append([]byte(`{"eventName":"registrant.added","email":"GRACE.HOPPER@example.com","firstName":"Grace`), 0xff, 0xfe)},
		// Her registration A's keys with an email that failed validation.
		{"keysA", []byte(`{"eventName":"registrant.added","webinarKey":` + webinarA + `,"registrantKey":` + graceA + `,"email":"grace at navy","firstName":"Grace"}`)},
		// Her email JSON-escaped: no substring search of the raw bytes finds it.
		{"escaped", []byte(`{"eventName":"registrant.added","email":"grace.hopper\u0040example.com","firstName":"\u0047race"}`)},
		// Somebody whose address ends with hers, and somebody else entirely.
		{"suffix", []byte(`{"eventName":"registrant.added","email":"lgrace.hopper@example.com"}`)},
		{"other", append([]byte(`{"eventName":"registrant.added","email":"other@example.com",`), 0xc3, 0x28)},
	}
	ids := map[string]int64{}
	for _, q := range quarantine {
		var id int64
		if err := pool.QueryRow(context.Background(), `INSERT INTO ingest_quarantine (reason, detail, signature_verified, headers, body)
			VALUES ('schema', '', true, '{}', $1) RETURNING id`, q.body).Scan(&id); err != nil {
			t.Fatalf("quarantine a delivery: %v", err)
		}
		ids[q.name] = id
	}
	// A rebuild applies only rows below every running transaction's xid, cluster-wide: wait
	// until a parallel test's transaction no longer hides the rows just appended.
	waitFor(t, 30*time.Second, "the appended events to be visible", func() (bool, error) {
		var hidden bool
		err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM `+eventlog.Table+`
			WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))`).Scan(&hidden)
		return !hidden, err
	})
	return ids
}

func without(t *testing.T, body []byte, member string) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	delete(m, member)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registrantRow is the text of one analytics registrants row, "" when absent.
func registrantRow(t *testing.T, pool *pgxpool.Pool, schema, webinar, registrant string) string {
	t.Helper()
	var row string
	err := pool.QueryRow(context.Background(), `SELECT r::text FROM `+schema+`.registrants r
		WHERE webinar_key = $1 AND registrant_key = $2`, webinar, registrant).Scan(&row)
	if err != nil {
		t.Fatalf("read %s registrant %s/%s: %v", schema, webinar, registrant, err)
	}
	return row
}

// logPayloads returns the payload text of every log row of one registration.
func logPayloads(t *testing.T, pool *pgxpool.Pool, webinar, registrant string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT payload::text FROM `+eventlog.Table+`
		WHERE payload::jsonb ->> 'webinarKey' = $1 AND payload::jsonb ->> 'registrantKey' = $2 ORDER BY "offset"`, webinar, registrant)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// figures are the conversion views, which forgetting must not change.
func figures(t *testing.T, pool *pgxpool.Pool) map[string][]string {
	t.Helper()
	d, err := projectionstest.DumpPublic(context.Background(), pool, projector.Schema)
	if err != nil {
		t.Fatalf("dump figures: %v", err)
	}
	return map[string][]string{
		"webinar_conversion":   d["webinar_conversion"],
		"conversion_by_source": d["conversion_by_source"],
		"registrations_daily":  d["registrations_daily"],
		"session_attendance":   d["session_attendance"],
	}
}

func forget(t *testing.T, env func(string) string, args ...string) erasure.Result {
	t.Helper()
	out := runCommand(t, env, append([]string{"forget", "-json"}, args...)...)
	var res erasure.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decode forget -json: %v\n%s", err, out)
	}
	return res
}

// containsAny reports the first of needles in text, case-insensitively.
func containsAny(text string, needles []string) (string, bool) {
	lower := strings.ToLower(text)
	for _, n := range needles {
		if strings.Contains(lower, strings.ToLower(n)) {
			return n, true
		}
	}
	return "", false
}

func TestForgetErasesThePerson(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		// erased and kept registrations of Grace, as (webinar, registrant).
		erased, kept [][2]string
		// shadow: an interrupted rebuild's shadow schema (with a prefetched batch) is there.
		shadow bool
		// keptQuarantined names the quarantined deliveries that stay (see seedPerson).
		keptQuarantined []string
		// mentions: the neighbour's rows whose comments quote her address (log, registrants);
		// parked: the parked events whose error text is erased or redacted.
		logMentions, registrantMentions, parked int64
	}{
		{"by email, any case", []string{"--email", "GRACE.hopper@example.COM"},
			[][2]string{{webinarA, graceA}, {webinarB, graceB}}, nil, true, []string{"suffix", "other"}, 1, 2, 2},
		{"by registrant key", []string{"--registrant-key", graceA},
			[][2]string{{webinarA, graceA}}, [][2]string{{webinarB, graceB}}, false, []string{"suffix", "other"}, 0, 0, 2},
		// Registration B's rows carry her email too, so the delivery with it goes; the one
		// with only registration A's keys stays.
		{"by registrant and webinar key", []string{"--registrant-key", graceB, "--webinar-key", webinarB},
			[][2]string{{webinarB, graceB}}, [][2]string{{webinarA, graceA}}, false, []string{"keysA", "suffix", "other"}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, url := pgtest.Pool(t)
			ctx := context.Background()
			env := testEnv(url, "REBUILD_BATCH_SIZE", "13")
			quarantined := seedPerson(t, pool)
			keepQuarantined := []int64{}
			for _, name := range tt.keptQuarantined {
				keepQuarantined = append(keepQuarantined, quarantined[name])
			}
			runCommand(t, env, "rebuild")
			if tt.shadow {
				interruptedShadow(t, pool)
			}
			parkSome(t, pool)
			before := dump(t, pool, projector.Schema)
			figuresBefore := figures(t, pool)
			keptRows := map[[2]string]string{}
			keptLog := map[[2]string][]string{}
			for _, k := range tt.kept {
				keptRows[k] = registrantRow(t, pool, projector.Schema, k[0], k[1])
				keptLog[k] = logPayloads(t, pool, k[0], k[1])
			}

			res := forget(t, env, tt.args...)
			if res.Registrations != len(tt.erased) || res.Registrants != int64(len(tt.erased)) ||
				res.LogEvents != 2*int64(len(tt.erased)) || res.QuarantineDeleted != int64(5-len(tt.keptQuarantined)) {
				t.Errorf("forget = %+v, want %d registrations and rows, %d log events, %d quarantined deliveries",
					res, len(tt.erased), 2*len(tt.erased), 5-len(tt.keptQuarantined))
			}
			if res.LogMentions != tt.logMentions || res.RegistrantMentions != tt.registrantMentions || res.Parked != tt.parked {
				t.Errorf("forget = %+v, want %d log and %d registrants mentions, %d parked events",
					res, tt.logMentions, tt.registrantMentions, tt.parked)
			}
			if !strings.HasPrefix(res.Vacuum, "VACUUM public.") || !strings.Contains(res.Vacuum, "ingest_quarantine") {
				t.Errorf("forget's VACUUM step = %q", res.Vacuum)
			}
			assertParked(t, pool, len(tt.kept) == 0 || tt.kept[0] != [2]string{webinarA, graceA})
			if tt.shadow && (!res.ShadowExists || res.ShadowRegistrants != 2 || res.ShadowPrefetchDropped != 1) {
				t.Errorf("forget = %+v, want the shadow's 2 registrants erased and its prefetch table dropped", res)
			}
			human := runCommand(t, env, append([]string{"forget"}, tt.args...)...)
			if !strings.Contains(human, "nothing changed") || strings.Contains(human, "VACUUM") {
				t.Errorf("a second forget changed something:\n%s", human)
			}
			if n, found := containsAny(human, personal); found {
				t.Errorf("forget printed %q:\n%s", n, human)
			}

			after := dump(t, pool, projector.Schema)
			for _, e := range tt.erased {
				row := registrantRow(t, pool, projector.Schema, e[0], e[1])
				if n, found := containsAny(row, personal); found || !strings.Contains(row, erasure.ErasedEmail) {
					t.Errorf("registrant %s after forget = %s: holds %q, or lacks %s", e[1], row, n, erasure.ErasedEmail)
				}
				payloads := logPayloads(t, pool, e[0], e[1])
				if len(payloads) != 2 {
					t.Errorf("%d log rows for registrant %s, want 2 (redacted, not deleted)", len(payloads), e[1])
				}
				for _, p := range payloads {
					if n, found := containsAny(p, personal); found {
						t.Errorf("log payload still holds %q: %s", n, p)
					}
					if _, err := domain.Parse([]byte(p)); err != nil {
						t.Errorf("redacted payload does not parse: %v: %s", err, p)
					}
				}
			}
			for _, k := range tt.kept {
				if got := registrantRow(t, pool, projector.Schema, k[0], k[1]); got != keptRows[k] {
					t.Errorf("registrant %s of another registration changed:\n%s\nwant\n%s", k[1], got, keptRows[k])
				}
				if got := logPayloads(t, pool, k[0], k[1]); strings.Join(got, "\n") != strings.Join(keptLog[k], "\n") {
					t.Errorf("log rows of registrant %s changed", k[1])
				}
			}
			if len(tt.kept) == 0 {
				assertNowhere(t, pool)
			}
			assertQuarantine(t, pool, keepQuarantined)
			if got := figures(t, pool); !equalDumps(got, figuresBefore) {
				t.Errorf("figures changed by forget:\n%v\nwant\n%v", got, figuresBefore)
			}
			for _, table := range []string{"webinars", "webinar_times", "joins"} {
				if strings.Join(after[table], "\n") != strings.Join(before[table], "\n") {
					t.Errorf("forget changed analytics.%s", table)
				}
			}

			// The log is the truth: a rebuild from it gives exactly the erased tables.
			runCommand(t, env, "rebuild")
			assertSameTables(t, "rebuild after forget vs forget", dump(t, pool, projector.Schema), after)
			if got := figures(t, pool); !equalDumps(got, figuresBefore) {
				t.Errorf("figures changed by the rebuild after forget")
			}

			// The trigger still refuses what forget was allowed to do.
			for _, stmt := range []string{
				`UPDATE ` + eventlog.Table + ` SET payload = '{}'::json`,
				`DELETE FROM ` + eventlog.Table,
			} {
				_, err := pool.Exec(ctx, stmt)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
					t.Errorf("%s after forget: %v, want insufficient_privilege from the append-only trigger", stmt, err)
				}
			}
		})
	}
}

// parkSome parks two events in analytics the way the projector does when one keeps
// failing: registration A's registrant.added, with an error quoting her name, and the
// neighbour's, with an error quoting her address (as the neighbour's comments do).
func parkSome(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO analytics._parked (epoch, transaction_id, "offset", event_key, event_name, error, attempts)
		SELECT epoch, transaction_id, "offset", event_key, event_name, e.error, 4
		FROM `+eventlog.Table+` l JOIN (VALUES
			($1, 'invalid input syntax: "Grace Hopper"'),
			('7000001000000000003', 'value too long: "colleague of grace.hopper@example.com, ask her"')) e(registrant, error)
		  ON l.payload::jsonb ->> 'registrantKey' = e.registrant
		WHERE l.event_name = 'registrant.added'`, graceA)
	if err != nil {
		t.Fatalf("park events: %v", err)
	}
}

// assertParked checks the parked events' error texts: the neighbour's no longer quotes her
// address, and registration A's is erased exactly when A was.
func assertParked(t *testing.T, pool *pgxpool.Pool, aErased bool) {
	t.Helper()
	errs := map[string]string{}
	rows, err := pool.Query(context.Background(), `SELECT l.payload::jsonb ->> 'registrantKey', p.error
		FROM analytics._parked p JOIN `+eventlog.Table+` l USING (epoch, transaction_id, "offset")`)
	if err != nil {
		t.Fatalf("read parked events: %v", err)
	}
	for rows.Next() {
		var registrant, text string
		if err := rows.Scan(&registrant, &text); err != nil {
			t.Fatal(err)
		}
		errs[registrant] = text
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := errs["7000001000000000003"]; strings.Contains(strings.ToLower(got), graceEmail) {
		t.Errorf("the neighbour's parked error still quotes her address: %s", got)
	}
	if got := errs[graceA]; (got == erasure.ErasedParkedError) != aErased {
		t.Errorf("registration A's parked error = %q; erased: want %v", got, aErased)
	}
}

// interruptedShadow leaves what an interrupted rebuild leaves: analytics_rebuild with the
// log applied and a parsed batch waiting in a prefetch table.
func interruptedShadow(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	end := eventlog.Position{Epoch: math.MaxInt32, TxID: math.MaxInt64, Offset: math.MaxInt64}
	if err := projections.Create(ctx, tx, projector.ShadowSchema); err != nil {
		t.Fatalf("create shadow: %v", err)
	}
	if _, err := projections.ApplyLog(ctx, tx, projector.ShadowSchema, eventlog.Position{}, end); err != nil {
		t.Fatalf("apply log to shadow: %v", err)
	}
	if _, err := projections.PrefetchLog(ctx, tx, projector.ShadowSchema, "_prefetch_0", eventlog.Position{}, end); err != nil {
		t.Fatalf("prefetch into shadow: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// assertNowhere checks that no analytics or shadow table, no log payload or metadata and no
// quarantined body but the neighbour's holds any of Grace's personal strings.
func assertNowhere(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname IN ($1, $2)`,
		projector.Schema, projector.ShadowSchema)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	tables = append(tables, eventlog.Table)
	for _, table := range tables {
		var text string
		if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(t::text, E'\n'), '') FROM `+table+` t`).Scan(&text); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		if n, found := containsAny(text, personal); found {
			t.Errorf("%s still holds %q", table, n)
		}
	}
}

// assertQuarantine checks that exactly the deliveries in keep are left.
func assertQuarantine(t *testing.T, pool *pgxpool.Pool, keep []int64) {
	t.Helper()
	var ids []int64
	if err := pool.QueryRow(context.Background(), `SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM ingest_quarantine`).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if jsonText(ids) != jsonText(keep) {
		t.Errorf("quarantined deliveries left: %v, want %v", ids, keep)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func equalDumps(a, b map[string][]string) bool {
	return jsonText(a) == jsonText(b)
}

// Forgetting somebody the pipeline never saw changes nothing, and says so.
func TestForgetUnknownPersonChangesNothing(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	env := testEnv(url)
	seedPerson(t, pool)
	runCommand(t, env, "rebuild")
	ctx := context.Background()
	state := func() string {
		var log, quarantine string
		if err := pool.QueryRow(ctx, `SELECT md5(string_agg(payload::text, E'\n' ORDER BY "offset")) FROM `+eventlog.Table).Scan(&log); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, `SELECT md5(string_agg(body, '\x00'::bytea ORDER BY id)) FROM ingest_quarantine`).Scan(&quarantine); err != nil {
			t.Fatal(err)
		}
		return jsonText(dump(t, pool, projector.Schema)) + log + quarantine
	}
	before := state()
	tests := []struct {
		name string
		args []string
	}{
		{"unknown email", []string{"--email", "nobody@example.com"}},
		{"a suffix of a known email", []string{"--email", "hopper@example.com"}},
		{"unknown registrant key", []string{"--registrant-key", "42"}},
		{"known registrant key on another webinar", []string{"--registrant-key", graceA, "--webinar-key", webinarB}},
	}
	for _, tt := range tests { // sequential: they share the database
		out := runCommand(t, env, append([]string{"forget"}, tt.args...)...)
		if !strings.Contains(out, "nothing to erase") {
			t.Errorf("%s: output %q does not say nothing was erased", tt.name, out)
		}
		if state() != before {
			t.Fatalf("%s: forget changed the database", tt.name)
		}
	}
}

// Forgetting while the live projector runs: events of the person not projected yet are
// redacted before they are applied, and the live tables equal a build from the log.
func TestForgetWhileLive(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	ctx := context.Background()
	env := testEnv(url, "PROJECTOR_BATCH_SIZE", "3")
	stop := startLive(t, env)
	seedPerson(t, pool)
	res := forget(t, env, "--email", graceEmail)
	if res.LogEvents != 4 {
		t.Errorf("forget redacted %d log events, want 4", res.LogEvents)
	}
	waitFor(t, 30*time.Second, "the live projector to catch up", func() (bool, error) { return consumerCaughtUp(ctx, pool) })
	if err := stop(); err != nil {
		t.Fatalf("stop live projector: %v", err)
	}
	assertNowhere(t, pool)
	assertSameTables(t, "live after forget vs reference", dump(t, pool, projector.Schema), reference(t, pool))
}

func TestForgetFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"nobody", nil, "required"},
		{"both", []string{"--email", "a@example.com", "--registrant-key", "1"}, "exclusive"},
		{"webinar alone", []string{"--webinar-key", "1"}, "webinar-key"},
		{"not an email", []string{"--email", "grace"}, "email address"},
		{"the placeholder", []string{"--email", "Erased@Invalid"}, "placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No DATABASE_URL: a bad request is refused before any configuration is read.
			err := run(context.Background(), append([]string{"forget"}, tt.args...), func(string) string { return "" }, &syncBuffer{}, &syncBuffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("forget %v = %v, want an error about %q", tt.args, err, tt.want)
			}
		})
	}
}

// Unverified deliveries (ingest_unverified, migration 0003: body bytea, headers jsonb, as in
// quarantine) that mention the person are deleted too.
func TestForgetDeletesUnverifiedDeliveries(t *testing.T) {
	t.Parallel()
	pool, url := pgtest.Pool(t)
	ctx := context.Background()
	env := testEnv(url)
	seedPerson(t, pool)
	bodies := []struct {
		headers, body string
		keep          bool
	}{
		{`{}`, `{"eventName":"registrant.added","email":"GRACE.HOPPER@example.com"}`, false},
		{`{}`, `{"eventName":"registrant.added","email":"grace.hopper\u0040example.com"}`, false},
		{`{"X-Forwarded-For":"grace.hopper@example.com"}`, `{}`, false},
		{`{}`, `{"eventName":"registrant.added","email":"lgrace.hopper@example.com"}`, true},
	}
	for _, b := range bodies {
		if _, err := pool.Exec(ctx, `INSERT INTO ingest_unverified (reason, headers, body, size_bytes) VALUES ('bad', $1, $2, $3)`, b.headers, []byte(b.body), len(b.body)+len(b.headers)); err != nil {
			t.Fatal(err)
		}
	}
	res := forget(t, env, "--email", graceEmail)
	if res.UnverifiedDeleted != 3 || !strings.Contains(res.Vacuum, "ingest_unverified") {
		t.Errorf("forget = %+v, want 3 unverified deliveries deleted and ingest_unverified in the VACUUM step", res)
	}
	var left []string
	if err := pool.QueryRow(ctx, `SELECT array_agg(convert_from(body, 'UTF8')) FROM ingest_unverified`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || !strings.Contains(left[0], "lgrace.hopper") {
		t.Errorf("unverified deliveries left: %q, want only the neighbour's", left)
	}
}

// Payloads may spell an address or a key with JSON escapes (valid JSON, and what ingest
// stores byte for byte): forget finds and redacts them as if written plainly, by email and
// by registrant key, mentions in other people's fields included.
func TestForgetFindsEscapedFormsInTheLog(t *testing.T) {
	t.Parallel()
	const (
		webinar  = "9100002000000000001"
		byEmail  = "7000002000000000001" // registered as ada\u0040example.com
		byKey    = "7000002000000000002" // its registrant key spelled …\u0032
		neighbor = "7000002000000000003" // mentions ada's address, escaped, in comments
	)
	event := func(key, registrant, email, extra string) []byte {
		return []byte(`{"eventName":"registrant.added","eventVersion":"1.0.0","product":"g2w","eventKey":"` + key +
			`","webinarKey":` + webinar + `,"registrantKey":` + registrant + `,"email":"` + email +
			`","firstName":"Ada","lastName":"Lovelace","registrationSource":"web"` + extra + `}`)
	}
	tests := []struct {
		name       string
		args       []string
		registrant string // whose log row must be redacted
	}{
		{"by email", []string{"--email", "ADA@example.com"}, byEmail},
		{"by registrant key", []string{"--registrant-key", byKey}, byKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool, url := pgtest.Pool(t)
			ctx := context.Background()
			appendEvents(t, pool, [][]byte{
				event("esc-1", byEmail, `ada\u0040example.com`, ``),
				event("esc-2", `"`+byKey[:len(byKey)-1]+`\u0032"`, `babbage@example.com`, ``), // its last digit escaped
				event("esc-3", neighbor, `neighbour@example.com`, `,"comments":"ask ada\u0040Example.com"`),
			}, 3)
			waitFor(t, 30*time.Second, "the appended events to be visible", func() (bool, error) {
				var hidden bool
				err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+eventlog.Table+`
					WHERE transaction_id >= pg_snapshot_xmin(pg_current_snapshot()))`).Scan(&hidden)
				return !hidden, err
			})
			env := testEnv(url)
			runCommand(t, env, "rebuild")
			res := forget(t, env, tt.args...)
			if res.Registrations != 1 || res.LogEvents != 1 || res.Registrants != 1 {
				t.Errorf("forget = %+v, want the one registration's log row and registrants row", res)
			}
			var names string
			if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(payload::jsonb::text, E'\n'), '') FROM `+eventlog.Table+`
				WHERE payload::jsonb ->> 'registrantKey' = $1`, tt.registrant).Scan(&names); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(names, "Lovelace") || !strings.Contains(names, erasure.ErasedEmail) {
				t.Errorf("the log row of %s after forget: %s", tt.registrant, names)
			}
			if tt.registrant == byEmail {
				var comments string
				if err := pool.QueryRow(ctx, `SELECT payload::jsonb ->> 'comments' FROM `+eventlog.Table+`
					WHERE payload::jsonb ->> 'registrantKey' = $1`, neighbor).Scan(&comments); err != nil {
					t.Fatal(err)
				}
				if comments != "ask "+erasure.ErasedEmail || res.LogMentions != 1 || res.RegistrantMentions != 1 {
					t.Errorf("the neighbour's comments = %q, forget = %+v; want the escaped mention replaced in the log and analytics", comments, res)
				}
			}
		})
	}
}
