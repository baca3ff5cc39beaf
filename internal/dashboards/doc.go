// Package dashboards holds the tests that keep Turnout's operational files honest: the
// Grafana dashboards and Prometheus rules in deploy/ and the database roles of migration
// 0002_roles.
//
// Every SQL panel and template variable is expanded the way Grafana expands it and run,
// as the read-only role turnout_reader, against a database filled by internal/scenario
// through the real ingest service and a real projector rebuild; every metric name in a
// PromQL expression (panels and alerting rules) must be one the services really expose.
// There is no non-test code here.
package dashboards
