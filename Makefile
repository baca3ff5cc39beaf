# Turnout — make help lists every target.
SHELL := /bin/bash
GO ?= go
WITH_PG := scripts/with-postgres.sh
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN := bin

.DEFAULT_GOAL := help
.PHONY: help build generate test lint fuzz demo migrate smoke bench-ingest bench-live bench-replay clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build every binary into bin/
	$(GO) build -o $(BIN)/ ./cmd/...

generate: ## regenerate code from specs (oapi-codegen)
	$(GO) generate ./...

test: ## vet, then every test under -race on a real PostgreSQL (a throwaway cluster unless DATABASE_URL is set)
	$(GO) vet ./...
	$(WITH_PG) $(GO) test -race -count=1 -timeout 20m ./...

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz: ## run each fuzz target for FUZZTIME (default 15s) on its committed seed corpus
	$(GO) test ./internal/webhook -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $${FUZZTIME:-15s}
	$(GO) test ./internal/webhook -run '^$$' -fuzz '^FuzzParseTimestamp$$' -fuzztime $${FUZZTIME:-15s}
	$(GO) test ./internal/domain -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $${FUZZTIME:-15s}
	$(GO) test ./internal/domain -run '^$$' -fuzz '^FuzzAccept$$' -fuzztime $${FUZZTIME:-15s}

demo: build ## the pipeline against a local GoToWebinar (g2wsim + g2wctl setup); prints the conversion tables
	$(WITH_PG) $(GO) run ./cmd/demo

migrate: ## apply migrations to DATABASE_URL
	@test -n "$$DATABASE_URL" || { echo "DATABASE_URL is not set"; exit 1; }
	$(GO) run ./cmd/migrate

smoke: ## the contract smoke check (../shared/checks/contract-smoke.py) on a throwaway cluster
	$(WITH_PG) python3 ../shared/checks/contract-smoke.py

.PHONY: bench-forward
bench-forward: build ## forwarder to JetStream: sustained beside ingest's peak (60 s), catch-up of 500,000 events beside raw async publishes
	PG_DURABLE=1 $(WITH_PG) $(GO) run ./cmd/bench forward

bench-ingest: build ## ingest deliveries/s at 32 senders beside pgbench, the HTTP floor and the Watermill peer on the same database (durable settings)
	PG_DURABLE=1 $(WITH_PG) $(GO) run ./cmd/bench ingest

bench-replay: build ## projector rebuild of 1,000,000 events beside the set-based ceiling (durable settings)
	PG_DURABLE=1 $(WITH_PG) $(GO) run ./cmd/bench replay

clean: ## remove build output
	rm -rf $(BIN)

bench-live: build ## live projector: 500k-event catch-up vs rebuild, lag under 60 s closed-loop ingest, 2xx→visible p99 at 1,000/s and 100/s
	PG_DURABLE=1 $(WITH_PG) $(GO) run ./cmd/bench live

.PHONY: bench-forget
bench-forget: build ## projector forget -email on a 1,000,000-event log (the live projector's pause) beside one parsing pass
	PG_DURABLE=1 $(WITH_PG) $(GO) run ./cmd/bench forget
.PHONY: bench-reconcile
bench-reconcile: ## REST backfill of 1,000 webinars × 300 registrants at GoTo's 10 requests/s: calls per webinar, calls/s, events/s
	PG_DURABLE=1 $(WITH_PG) $(GO) run ./cmd/bench reconcile
