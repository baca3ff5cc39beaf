package g2wctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestTokenFileShape guards the token file's shape: what x/oauth2 marshals, under
// profiles.NAME.token.
func TestTokenFileShape(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "tok.json")
	store := &Store{Path: path}
	tok := &oauth2.Token{AccessToken: "a", RefreshToken: "r", TokenType: "Bearer", Expiry: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := SaveLogin(store, "alice", tok); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Profiles map[string]struct {
			Token struct {
				Refresh string `json:"refresh_token"`
			} `json:"token"`
		} `json:"profiles"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Profiles["alice"].Token.Refresh != "r" {
		t.Errorf("token file %s: %v", b, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: %v %v", info.Mode(), err)
	}
}

// TestOldFileUpgraded reads a file written before profiles and rotation: its token becomes the
// default profile and its key the first recorded one.
func TestOldFileUpgraded(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.json")
	old := `{"token":{"access_token":"a","refresh_token":"r"},"secretKey":{"apiUrl":"https://api","value":"k1"}}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := (&Store{Path: path}).Load()
	if err != nil {
		t.Fatal(err)
	}
	if p := f.Profiles[DefaultProfile]; p == nil || p.Token.RefreshToken != "r" || f.Token != nil {
		t.Errorf("profiles %+v: want the old token as %q", f.Profiles, DefaultProfile)
	}
	if got := f.Secrets("https://api"); len(got) != 1 || got[0].Value != "k1" || len(f.Secrets("http://other")) != 0 {
		t.Errorf("secrets %+v: want k1 for https://api only", got)
	}
}
