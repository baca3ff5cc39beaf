package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/turnout-analytics/turnout/internal/ingest"
	"github.com/turnout-analytics/turnout/migrations"
)

// requeueConfig is what `ingest requeue` reads: the database, the keys ingest is
// configured with now, and the selection flags.
type requeueConfig struct {
	DatabaseURL string
	opts        ingest.RequeueOptions
}

func loadRequeueConfig(args []string, getenv func(string) string, usage io.Writer, now time.Time) (requeueConfig, error) {
	var cfg requeueConfig
	fs := flag.NewFlagSet("ingest requeue", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.BoolVar(&cfg.opts.DryRun, "dry-run", false, "report what would be admitted; write nothing")
	fs.StringVar(&cfg.opts.Reason, "reason", "", "only deliveries kept for this reason (e.g. invalid_key, bad)")
	since := fs.String("since", "", "only deliveries received since T: RFC 3339 time, or a duration ago such as 24h")
	fs.Usage = func() {
		fmt.Fprintln(usage, `Usage: ingest requeue [-dry-run] [-reason R] [-since T]

Re-examines quarantined deliveries (ingest_quarantine) and deliveries whose signature did
not verify (ingest_unverified) under the current acceptance rule and G2W_SECRET_KEYS, and
appends those that now pass to the event log (dedup by eventKey; a second run admits
nothing new). Admitted rows are marked (admitted_at, admitted_by), never deleted. Prints
what was admitted and what still fails, by store and reason. Run it as the database owner
(it reads stored bodies, which turnout_ingest cannot), after changing keys (restart
ingest with them too) or after upgrading the rules.

Environment:
  DATABASE_URL      postgres:// URL (required)
  G2W_SECRET_KEYS   comma-separated keys to verify unverified deliveries with

Flags:`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	cfg.DatabaseURL = strings.TrimSpace(getenv("DATABASE_URL"))
	if u, err := url.Parse(cfg.DatabaseURL); cfg.DatabaseURL == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		errs = append(errs, errors.New("DATABASE_URL: required, a postgres:// URL"))
	}
	for i, k := range strings.Split(getenv("G2W_SECRET_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.opts.SecretKeys = append(cfg.opts.SecretKeys, []byte(k))
		} else if strings.TrimSpace(getenv("G2W_SECRET_KEYS")) != "" {
			errs = append(errs, fmt.Errorf("G2W_SECRET_KEYS: entry %d is empty", i+1))
		}
	}
	if *since != "" {
		if t, err := time.Parse(time.RFC3339, *since); err == nil {
			cfg.opts.Since = t
		} else if d, err := time.ParseDuration(*since); err == nil && d > 0 {
			cfg.opts.Since = now.Add(-d)
		} else {
			errs = append(errs, fmt.Errorf("-since: %q is neither an RFC 3339 time nor a positive duration", *since))
		}
	}
	// The run id says when and what ran; it is stored with every row it admits.
	cfg.opts.RunID = "requeue " + now.UTC().Format(time.RFC3339Nano)
	return cfg, errors.Join(errs...)
}

// runRequeue is `ingest requeue`.
func runRequeue(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadRequeueConfig(args, getenv, stdout, time.Now())
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return errors.New("open database pool: invalid DATABASE_URL") // never echo: it may hold a password
	}
	// Requeue always runs as the owner (it reads stored bodies and writes the log, which no
	// service role may do both of), and its SQL names ingest's tables unqualified: no session
	// of it may resolve a name in a schema another role could create (migrations.OwnerSearchPath).
	poolCfg.ConnConfig.RuntimeParams["search_path"] = migrations.OwnerSearchPath
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("open database pool: %w", err)
	}
	defer pool.Close()
	rep, err := ingest.Requeue(ctx, pool, cfg.opts)
	if err != nil {
		return err
	}
	verb := "admitted"
	if cfg.opts.DryRun {
		verb = "would admit"
	}
	fmt.Fprintf(stdout, "%s (%s): %d\n", verb, cfg.opts.RunID, ingest.Total(rep.Admitted))
	for _, l := range ingest.Lines(rep.Admitted) {
		fmt.Fprintln(stdout, "  "+l)
	}
	fmt.Fprintf(stdout, "already in the log (marked admitted): %d\n", ingest.Total(rep.Duplicates))
	for _, l := range ingest.Lines(rep.Duplicates) {
		fmt.Fprintln(stdout, "  "+l)
	}
	fmt.Fprintf(stdout, "still failing: %d\n", ingest.Total(rep.Failing))
	for _, l := range ingest.Lines(rep.Failing) {
		fmt.Fprintln(stdout, "  "+l)
	}
	return nil
}
