package g2wctl

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestTokenFileShape guards the token file's shape: what x/oauth2 marshals, under "token".
func TestTokenFileShape(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "tok.json")
	store := &Store{Path: path}
	tok := &oauth2.Token{AccessToken: "a", RefreshToken: "r", TokenType: "Bearer", Expiry: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := store.Update(func(f *File) { f.Token = tok }); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Token struct {
			Refresh string `json:"refresh_token"`
		} `json:"token"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Token.Refresh != "r" {
		t.Errorf("token file %s: %v", b, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: %v %v", info.Mode(), err)
	}
}
