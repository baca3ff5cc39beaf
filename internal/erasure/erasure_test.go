package erasure

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/turnout-analytics/turnout/internal/pgtest"
	"github.com/turnout-analytics/turnout/internal/rebuild"
)

func TestMentions(t *testing.T) {
	t.Parallel()
	const email = "ada@example.com"
	regA := registration{webinar: "9100000000000000001", registrant: "9223372036854775807"}
	anyWebinar := registration{registrant: "9223372036854775807"}
	tests := []struct {
		name string
		body string
		regs []registration
		want bool
	}{
		{"email in JSON", `{"email":"ada@example.com"}`, nil, true},
		{"other case", `{"email":"ADA@Example.COM"}`, nil, true},
		{"end of a sentence", `mail ada@example.com.`, nil, true},
		{"at the very start and end", `ada@example.com`, nil, true},
		{"invalid UTF-8 around it", "\xff\xfeada@example.com\xc3\x28", nil, true},
		{"longer local part", `{"email":"lada@example.com"}`, nil, false},
		{"dotted longer local part", `{"email":"x.ada@example.com"}`, nil, false},
		{"longer domain", `{"email":"ada@example.com.au"}`, nil, false},
		{"longer domain label", `{"email":"ada@example.community"}`, nil, false},
		{"a later standalone occurrence counts", `lada@example.com, ada@example.com`, nil, true},
		{"registrant and webinar key", `{"webinarKey":9100000000000000001,"registrantKey":9223372036854775807}`, []registration{regA}, true},
		{"registrant key without its webinar", `{"webinarKey":1,"registrantKey":9223372036854775807}`, []registration{regA}, false},
		{"registrant key, any webinar", `{"registrantKey":"9223372036854775807"}`, []registration{anyWebinar}, true},
		{"key inside a longer number", `{"registrantKey":92233720368547758071}`, []registration{anyWebinar}, false},
		{"nothing", `{"email":"grace@example.com"}`, []registration{regA}, false},
		{"JSON-escaped at sign", `{"email":"ada\u0040example.com"}`, nil, true},
		{"JSON-escaped letters, upper-case hex", `{"comments":"write to \u0041DA\u0040EXAMPLE.COM"}`, nil, true},
		{"escaped at sign in a longer address", `{"email":"lada\u0040example.com"}`, nil, false},
		{"an escaped backslash escapes nothing", `{"email":"ada\\u0040example.com"}`, nil, false},
		{"escaped solidus in a key-less body", `{"x":"ada@example.com\/"}`, nil, true},
		{"not JSON, with an escape", "\xff ada\\u0040example.com \\u12", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mentions([]byte(tt.body), []string{email}, tt.regs); got != tt.want {
				t.Errorf("mentions(%q) = %v, want %v", tt.body, got, tt.want)
			}
		})
	}
}

func TestPersonValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		person Person
		want   string // "" = valid
	}{
		{"email", Person{Email: "ada@example.com"}, ""},
		{"registrant key", Person{RegistrantKey: "1"}, ""},
		{"registrant and webinar key", Person{RegistrantKey: "1", WebinarKey: "2"}, ""},
		{"nobody", Person{}, "required"},
		{"both", Person{Email: "ada@example.com", RegistrantKey: "1"}, "exclusive"},
		{"webinar key alone", Person{WebinarKey: "2"}, "needs it"},
		{"email and webinar key", Person{Email: "ada@example.com", WebinarKey: "2"}, "needs it"},
		{"not an address", Person{Email: "ada"}, "email address"},
		{"padded", Person{Email: " ada@example.com"}, "email address"},
		{"the placeholder", Person{Email: "ERASED@invalid"}, "placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.person.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

// A rebuild in progress (it holds the rebuild lock, rebuild.LockKey) makes Forget refuse,
// changing nothing.
func TestForgetRefusesDuringRebuild(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Pool(t)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(rebuild.LockKey)); err != nil {
		t.Fatal(err)
	}
	if _, err := Forget(ctx, pool, Person{Email: "ada@example.com"}); !errors.Is(err, ErrRebuildRunning) {
		t.Errorf("Forget during a rebuild = %v, want ErrRebuildRunning", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(rebuild.LockKey)); err != nil {
		t.Fatal(err)
	}
	res, err := Forget(ctx, pool, Person{Email: "ada@example.com"})
	if err != nil || res.Changed() {
		t.Errorf("Forget after the rebuild = %+v, %v; want nothing changed and no error", res, err)
	}
}

func TestReplaceMentions(t *testing.T) {
	t.Parallel()
	emails := []string{"ada@example.com"}
	tests := []struct {
		name, in, want string
		changed        bool
	}{
		{"free text", `call ADA@example.com today`, `call erased@invalid today`, true},
		{"twice, in JSON text", `{"a": "ada@example.com", "b": ["x ada@example.com."]}`,
			`{"a": "erased@invalid", "b": ["x erased@invalid."]}`, true},
		{"a longer address stays", `lada@example.com, ada@example.com.au`, `lada@example.com, ada@example.com.au`, false},
		{"nothing", `grace@example.com`, `grace@example.com`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := replaceMentions(tt.in, emails, ErasedEmail)
			if got != tt.want || changed != tt.changed {
				t.Errorf("replaceMentions(%q) = %q, %v; want %q, %v", tt.in, got, changed, tt.want, tt.changed)
			}
		})
	}
}

func TestLikePatterns(t *testing.T) {
	t.Parallel()
	got := likePatterns([]string{"a_b%c\\d@example.com", "7000001000000000001"})
	want := []string{`%\\u%`, `%\\/%`, `%a\_b\%c\\d@example.com%`, `%7000001000000000001%`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("likePatterns = %q, want %q", got, want)
	}
}
