package reconcile

import (
	"context"
	"time"
)

// Defaults of ServiceConfig.
const (
	// DefaultPollInterval is how often the service looks for sessions that have ended: GoTo
	// lists a session's attendees once it has ended, so a few minutes after is soon enough.
	DefaultPollInterval = 5 * time.Minute
	// DefaultSweepInterval is how often the service sweeps the last SweepDays again, to catch
	// what changed after its session's poll (late registrations, GoTo's own late data).
	DefaultSweepInterval = 24 * time.Hour
	// DefaultSweepDays is the window of a sweep.
	DefaultSweepDays = 7
)

// ServiceConfig configures Serve.
type ServiceConfig struct {
	PollInterval  time.Duration // default DefaultPollInterval
	SweepInterval time.Duration // default DefaultSweepInterval
	SweepDays     int           // default DefaultSweepDays
}

// Serve polls for ended sessions every PollInterval and sweeps the last SweepDays whenever
// the last finished sweep (or `once` run) is older than SweepInterval, until ctx is done. A
// failed run is logged and retried at the next tick (it resumes where it stopped); Serve
// returns nil when ctx is done.
func (r *Reconciler) Serve(ctx context.Context, sc ServiceConfig) error {
	if sc.PollInterval <= 0 {
		sc.PollInterval = DefaultPollInterval
	}
	if sc.SweepInterval <= 0 {
		sc.SweepInterval = DefaultSweepInterval
	}
	if sc.SweepDays <= 0 {
		sc.SweepDays = DefaultSweepDays
	}
	log := r.cfg.Logger
	tick := time.NewTicker(sc.PollInterval)
	defer tick.Stop()
	for {
		if _, err := r.Recent(ctx); err != nil && ctx.Err() == nil {
			r.failures.Add(1)
			log.Error("reconcile ended sessions", "err", err)
		}
		last, err := r.LastSweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			r.failures.Add(1)
			log.Error("read last sweep", "err", err)
		case err == nil && r.cfg.Now().Sub(last) >= sc.SweepInterval:
			if _, err := r.Sweep(ctx, sc.SweepDays); err != nil && ctx.Err() == nil {
				r.failures.Add(1)
				log.Error("sweep", "days", sc.SweepDays, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Failures is how many runs of Serve failed (each is retried at the next tick).
func (r *Reconciler) Failures() int64 { return r.failures.Load() }
