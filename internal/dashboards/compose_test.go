package dashboards

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeFileLoads loads docker-compose.yml with the Compose specification's own
// loader (schema validation, interpolation, profiles), since no Docker engine runs where
// the tests do, and checks what the stack promises: every service there, each Turnout
// service running a binary this repository builds, and every file it mounts present.
func TestComposeFileLoads(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	project, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: map[string]string{"G2W_SECRET_KEYS": "test-key"},
	}, func(o *loader.Options) {
		o.SetProjectName("turnout", true)
		o.Profiles = []string{"demo"}
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	want := []string{"postgres", "migrate", "ingest", "projector", "prometheus", "grafana", "g2wsim", "g2wctl"}
	for _, name := range want {
		if _, ok := project.Services[name]; !ok {
			t.Errorf("service %s is missing", name)
		}
	}
	for name, svc := range project.Services {
		if len(svc.Entrypoint) > 0 && strings.HasPrefix(svc.Entrypoint[0], "/usr/local/bin/") {
			bin := strings.TrimPrefix(svc.Entrypoint[0], "/usr/local/bin/")
			if _, err := os.Stat(filepath.Join(root, "cmd", bin, "main.go")); err != nil {
				t.Errorf("service %s runs %s, which cmd/ does not build", name, bin)
			}
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %s mounts %s, which does not exist", name, v.Source)
				}
			}
		}
	}
	if ingest := project.Services["ingest"]; !slices.Contains(ingest.Entrypoint, "-migrate=false") {
		t.Errorf("ingest must not migrate as its restricted role: entrypoint %v", ingest.Entrypoint)
	}
	if env := project.Services["ingest"].Environment["G2W_SECRET_KEYS"]; env == nil || *env != "test-key" {
		t.Errorf("ingest does not get G2W_SECRET_KEYS from the environment")
	}
}
