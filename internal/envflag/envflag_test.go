package envflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlagWinsOverVariableOverDefault(t *testing.T) {
	env := map[string]string{"T_ADDR": " :9000 ", "T_N": "7", "T_ON": "true", "T_WAIT": "2s", "T_RATE": "0.5", "T_SEED": "42", "T_KEY": "s3cret"}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := New(fs, func(k string) string { return env[k] })
	addr, n, on, wait, rate, seed, key := ":8080", 1, false, time.Second, 0.0, uint64(1), ""
	s.String(&addr, "addr", "T_ADDR", "")
	s.Int(&n, 1, 10, "n", "T_N", "")
	s.Bool(&on, "on", "T_ON", "")
	s.Duration(&wait, "wait", "T_WAIT", "")
	s.Float(&rate, 0, 1, "rate", "T_RATE", "")
	s.Uint(&seed, "seed", "T_SEED", "")
	s.Secret(&key, "key", "T_KEY", "")
	if err := fs.Parse([]string{"-n", "9"}); err != nil {
		t.Fatal(err)
	}
	if len(s.Errors()) != 0 {
		t.Fatalf("errors: %v", s.Errors())
	}
	if addr != ":9000" || n != 9 || !on || wait != 2*time.Second || rate != 0.5 || seed != 42 || key != "s3cret" {
		t.Errorf("got addr=%q n=%d on=%v wait=%v rate=%v seed=%d key set=%v", addr, n, on, wait, rate, seed, key != "")
	}
	var help strings.Builder
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if strings.Contains(help.String(), "s3cret") {
		t.Error("-h shows the secret")
	}
	if !strings.Contains(help.String(), "[T_ADDR]") {
		t.Errorf("help does not name the variable:\n%s", help.String())
	}
}

func TestEveryBadVariableIsNamed(t *testing.T) {
	env := map[string]string{"B_N": "11", "B_ON": "maybe", "B_WAIT": "-1s", "B_RATE": "2", "B_SEED": "-3", "B_LATER": "soon"}
	fs := flag.NewFlagSet("b", flag.ContinueOnError)
	s := New(fs, func(k string) string { return env[k] })
	var (
		n          int
		on         bool
		wait, late time.Duration
		rate       float64
		seed       uint64
	)
	s.Int(&n, 1, 10, "n", "B_N", "")
	s.Bool(&on, "on", "B_ON", "")
	s.Duration(&wait, "wait", "B_WAIT", "")
	s.Float(&rate, 0, 1, "rate", "B_RATE", "")
	s.Uint(&seed, "seed", "B_SEED", "")
	s.Env(DurationValue(&late), "B_LATER")
	var msgs []string
	for _, err := range s.Errors() {
		msgs = append(msgs, err.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, v := range []string{"B_N", "B_ON", "B_WAIT", "B_RATE", "B_SEED", "B_LATER"} {
		if !strings.Contains(all, v+":") {
			t.Errorf("no error names %s:\n%s", v, all)
		}
	}
}
