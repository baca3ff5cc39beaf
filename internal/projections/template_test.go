package projections

import (
	"strings"
	"testing"

	turnoutsql "github.com/turnout-analytics/turnout/sql"
)

func TestFillTemplate(t *testing.T) {
	tests := []struct {
		name, sql, region, with string
		want, wantErr           string
	}{
		{
			name: "region replaced, markers included", region: "stage", with: "s.t",
			sql:  "INSERT INTO /* TEMPLATE_BEGIN: stage */ pg_temp.x /* TEMPLATE_END */ (a)",
			want: "INSERT INTO s.t (a)",
		},
		{
			name: "only the named region", region: "source", with: "SELECT 2",
			sql:  "INSERT INTO /* TEMPLATE_BEGIN: stage */ x /* TEMPLATE_END */ (/* TEMPLATE_BEGIN: source */ SELECT 1 /* TEMPLATE_END */)",
			want: "INSERT INTO /* TEMPLATE_BEGIN: stage */ x /* TEMPLATE_END */ (SELECT 2)",
		},
		{name: "no region", region: "stage", sql: "SELECT 1", wantErr: "no /* TEMPLATE_BEGIN: stage */"},
		{name: "no end", region: "stage", sql: "SELECT /* TEMPLATE_BEGIN: stage */ 1", wantErr: "no /* TEMPLATE_END */"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fillTemplate(tt.sql, tt.region, tt.with)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// The staging INSERT as written is the live apply's statement: its "stage" region's default
// is the table the projection statements read, and the prefetch path can replace it.
func TestStageInsertDefaults(t *testing.T) {
	b, err := turnoutsql.FS.ReadFile("projections/stage_insert.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(b)
	if !strings.Contains(sql, "/* TEMPLATE_BEGIN: stage */ "+stageTable+" /* TEMPLATE_END */") {
		t.Errorf("stage_insert.sql's stage region does not default to %s", stageTable)
	}
	if strings.Contains(sql, "{{") {
		t.Error("stage_insert.sql still has a {{…}} placeholder")
	}
	filled, err := fillTemplate(sql, "stage", "s.prefetch")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(filled, "INSERT INTO s.prefetch (") {
		t.Errorf("filled stage region: %q", filled[:200])
	}
}
