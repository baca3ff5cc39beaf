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
	"go.yaml.in/yaml/v3"
)

// TestComposeFileLoads loads docker-compose.yml with the Compose specification's own
// loader (schema validation, interpolation, profiles), since no Docker engine runs where
// the tests do, and checks what the stack promises: every service there, each Turnout
// service running a binary this repository builds, and every file it mounts present.
func TestComposeFileLoads(t *testing.T) {
	root, project := loadCompose(t, map[string]string{"G2W_SECRET_KEYS": "test-key"})
	want := []string{"postgres", "migrate", "ingest", "projector", "prometheus", "alertmanager", "grafana", "g2wsim", "g2wctl"}
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

// loadCompose loads docker-compose.yml (profile demo) with env as the shell's environment.
func loadCompose(t *testing.T, env map[string]string) (root string, project *types.Project) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	project, err = loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("turnout", true)
		o.Profiles = []string{"demo"}
	})
	if err != nil {
		t.Fatalf("docker-compose.yml does not load with environment %v: %v", env, err)
	}
	return root, project
}

// Every documented compose command must load the file, including those run before the
// secret key exists (`docker compose run --rm g2wctl setup …` prints it): the stack may
// not require G2W_SECRET_KEYS to be set. Ingest itself refuses to start without a key.
func TestComposeLoadsWithoutTheSecretKey(t *testing.T) {
	_, project := loadCompose(t, map[string]string{})
	if env := project.Services["ingest"].Environment["G2W_SECRET_KEYS"]; env == nil || *env != "" {
		t.Errorf("ingest's G2W_SECRET_KEYS without the variable = %v, want empty (ingest reports it)", env)
	}
}

// Prometheus sends its alerts to the compose stack's Alertmanager, on the port it listens on.
func TestComposeWiresAlertmanager(t *testing.T) {
	root, project := loadCompose(t, map[string]string{"G2W_SECRET_KEYS": "test-key"})
	am, ok := project.Services["alertmanager"]
	if !ok {
		t.Fatal("no alertmanager service")
	}
	if !slices.Contains(am.Command, "--config.file=/etc/alertmanager/alertmanager.yml") {
		t.Errorf("alertmanager does not read the provisioned configuration: %v", am.Command)
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, a := range cfg.Alerting.Alertmanagers {
		for _, sc := range a.StaticConfigs {
			targets = append(targets, sc.Targets...)
		}
	}
	if !slices.Contains(targets, "alertmanager:9093") {
		t.Errorf("prometheus.yml sends alerts to %v, want alertmanager:9093", targets)
	}
}
