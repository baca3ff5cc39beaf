package faults

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/scenario"
)

// TestLogsHoldNoSecretsOrPersonalData runs a whole scenario through the real ingest and
// projector binaries, at debug level, including forged, invalid (quarantined) and duplicate
// deliveries and a rebuild, and scans everything they printed for the webhook secret, the
// database password and every personal value in the payloads (emails, names, phone
// numbers, organizations, question answers).
func TestLogsHoldNoSecretsOrPersonalData(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	const dbPassword = "db-pass-7f3a"
	withPassword := strings.Replace(dbURL, "postgres@", "postgres:"+dbPassword+"@", 1) // trust auth ignores it
	addr, opsAddr := freeAddr(t), freeAddr(t)
	env := []string{"DATABASE_URL=" + withPassword, "G2W_SECRET_KEYS=" + secret + ",second-" + secret,
		"INGEST_ADDR=" + addr, "PROJECTOR_ADDR=" + freeAddr(t), "INGEST_OPS_ADDR=" + opsAddr, "LOG_LEVEL=debug"}
	base := "http://" + addr
	client := &http.Client{Timeout: 5 * time.Second}

	ingest := start(t, "ingest", env)
	waitFor(t, 60*time.Second, "ingest to be ready", func() (bool, error) {
		resp, err := client.Get("http://" + opsAddr + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	projector := start(t, "projector", env)

	sc := scenario.Generate(11)
	for i, body := range sc.Events {
		if code, err := post(client, base, body); err != nil || code != http.StatusOK {
			t.Fatalf("delivery %d answered %d: %v", i, code, err)
		}
		if i%7 == 0 { // a redelivery
			if code, err := post(client, base, body); err != nil || code != http.StatusOK {
				t.Fatalf("redelivery answered %d: %v", code, err)
			}
		}
	}
	// Authentic but without an eventKey: quarantined, and the quarantine path logs its reason.
	invalid := strings.Replace(string(sc.Events[len(sc.Events)-1]), `"eventKey":"`, `"noEventKey":"`, 1)
	if code, _ := post(client, base, []byte(invalid)); code/100 != 4 {
		t.Fatalf("delivery without eventKey answered %d, want 4xx", code)
	}
	var withEmail string
	for _, b := range sc.Events {
		if strings.Contains(string(b), `"email":"`) {
			withEmail = string(b)
			break
		}
	}
	// An invalid email is stored with a data-quality finding; its value must not be logged.
	bad := strings.Replace(withEmail, `"email":"`, `"email":"not-an-email `, 1)
	bad = strings.Replace(bad, `"eventKey":"`, `"eventKey":"bad-email-`, 1)
	if code, _ := post(client, base, []byte(bad)); code/100 != 2 {
		t.Fatalf("invalid email answered %d, want 2xx", code)
	}
	pool := openPool(t, dbURL)
	waitCaughtUp(t, pool)
	rb := start(t, "projector", env, "rebuild", "-migrate=false")
	if err := rb.cmd.Wait(); err != nil {
		t.Fatalf("projector rebuild: %v", err)
	}
	ingest.kill()
	projector.kill()

	var logs strings.Builder
	for _, p := range []*proc{ingest, projector, rb} {
		p.mu.Lock()
		logs.WriteString(p.out.String())
		p.mu.Unlock()
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"DEBUG"`) && !strings.Contains(out, `"level":"INFO"`) {
		t.Fatalf("the services logged nothing to scan:\n%s", out)
	}
	forbidden := map[string]string{secret: "webhook secret", dbPassword: "database password"}
	for _, body := range sc.Events {
		var p map[string]any
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"email", "firstName", "lastName", "phone", "organization", "jobTitle", "comments"} {
			if v, ok := p[field].(string); ok && len(v) >= 3 {
				forbidden[v] = field
			}
		}
		if rs, ok := p["responses"].([]any); ok {
			for _, r := range rs {
				if a, ok := r.(map[string]any)["answer"].(string); ok && len(a) >= 3 {
					forbidden[a] = "question answer"
				}
			}
		}
	}
	leaks := 0
	for value, what := range forbidden {
		if strings.Contains(out, value) {
			leaks++
			t.Errorf("the logs contain a %s (%q)", what, value)
		}
	}
	t.Logf("scanned %d bytes of logs for %d secret or personal values: %d found", len(out), len(forbidden), leaks)
}
