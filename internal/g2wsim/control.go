package g2wsim

import (
	"net/http"
	"strconv"

	"github.com/turnout-analytics/turnout/internal/scenario"
)

// DeliverHandler is the emulator's control endpoint: each POST generates the scenario for the
// query's seed (default defaultSeed), delivers it with d, and answers the Report as JSON once
// every delivery has finished. It is what a demo or a load test calls after setting up the
// webhooks (g2wctl setup).
func DeliverHandler(d *Deliverer, defaultSeed uint64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "POST to deliver a scenario")
			return
		}
		seed := defaultSeed
		if s := r.URL.Query().Get("seed"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				writeError(w, http.StatusBadRequest, "InvalidSeed", "seed must be an unsigned integer")
				return
			}
			seed = v
		}
		report, err := d.DeliverScenario(r.Context(), scenario.Generate(seed))
		d.cfg.Logger.Info("delivery run", "seed", seed, "events", report.Events, "planned", report.Planned,
			"delivered", report.Delivered, "failed", report.Failed, "retries", report.Retries,
			"unrouted", report.Unrouted, "interrupted", err != nil)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "DeliveryInterrupted", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, report)
	})
}
