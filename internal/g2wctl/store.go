package g2wctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// File is the content of the user's g2wctl file: one OAuth2 token per organizer profile
// (`g2wctl login --profile NAME`) and the webhook secret keys g2wctl created. Both are
// secrets, so the file is written with mode 0600.
type File struct {
	// Profiles holds each logged-in organizer by profile name.
	Profiles map[string]*Profile `json:"profiles,omitempty"`
	// Token is where files written before profiles kept the one token; Load moves it to the
	// profile DefaultProfile.
	Token *oauth2.Token `json:"token,omitempty"`
	// SecretKeys are the signing keys g2wctl created, oldest first. GoTo returns a key's
	// value only once, at creation, so they are kept here for setup to print again and for
	// a rotation to print old and new.
	SecretKeys []StoredSecret `json:"secretKeys,omitempty"`
	// SecretKey is where files written before rotation kept the one key; Load moves it to
	// SecretKeys.
	SecretKey *StoredSecret `json:"secretKey,omitempty"`
}

// DefaultProfile is the profile `g2wctl login` writes without --profile.
const DefaultProfile = "default"

// Profile is one logged-in organizer.
type Profile struct {
	// Token is the OAuth2 token, rewritten on every refresh.
	Token *oauth2.Token `json:"token"`
	// OrganizerKey and Email are what the token endpoint said of the user, for display.
	OrganizerKey string `json:"organizerKey,omitempty"`
	Email        string `json:"email,omitempty"`
}

// StoredSecret is a webhook secret key and the API it was created with, so a key created on
// a local emulator is never offered for live GoTo.
type StoredSecret struct {
	APIURL    string    `json:"apiUrl"`
	ID        string    `json:"id,omitempty"`
	Value     string    `json:"value"`
	ValidFrom time.Time `json:"validFrom,omitzero"`
}

// Secrets returns the keys recorded for apiURL, oldest first.
func (f File) Secrets(apiURL string) []StoredSecret {
	var out []StoredSecret
	for _, s := range f.SecretKeys {
		if s.APIURL == apiURL && s.Value != "" {
			out = append(out, s)
		}
	}
	return out
}

// ProfileNames returns the profile names in order.
func (f File) ProfileNames() []string {
	return slices.Sorted(maps.Keys(f.Profiles))
}

// upgrade moves the fields of files written by earlier versions to their new places.
func (f *File) upgrade() {
	if f.Token != nil {
		if f.Profiles == nil {
			f.Profiles = map[string]*Profile{}
		}
		if _, ok := f.Profiles[DefaultProfile]; !ok {
			f.Profiles[DefaultProfile] = &Profile{Token: f.Token}
		}
		f.Token = nil
	}
	if f.SecretKey != nil {
		f.SecretKeys = append([]StoredSecret{*f.SecretKey}, f.SecretKeys...)
		f.SecretKey = nil
	}
}

// Store reads and writes one File at Path. Writes are atomic (a temporary file in the same
// directory, synced, then renamed) so an interrupted refresh never leaves a truncated token.
// A Store is safe for concurrent use within one process.
type Store struct {
	Path string
	mu   sync.Mutex
}

// DefaultPath is where the file lives unless configured: $XDG_CONFIG_HOME/turnout/g2w-token.json,
// or ~/.config/turnout/g2w-token.json when XDG_CONFIG_HOME is unset. It fails only when
// neither XDG_CONFIG_HOME nor HOME is set.
func DefaultPath(getenv func(string) string) (string, error) {
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CONFIG_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "turnout", "g2w-token.json"), nil
}

// Load returns the stored File; the zero File when there is none yet.
func (s *Store) Load() (File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked()
}

func (s *Store) loadLocked() (File, error) {
	var f File
	b, err := os.ReadFile(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("read token file: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("decode token file %s: %w", s.Path, err)
	}
	f.upgrade()
	return f, nil
}

// Update loads the File, lets change modify it, and writes it back atomically with mode 0600.
func (s *Store) Update(change func(*File)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.loadLocked()
	if err != nil {
		return err
	}
	change(&f)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode token file: %w", err)
	}
	return writeAtomic(s.Path, append(b, '\n'))
}

// writeAtomic replaces path with data, mode 0600, creating its directory (0700) if needed.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create token directory: %w", err)
	}
	// CreateTemp opens with mode 0600 already; the file never exists with wider permissions.
	tmp, err := os.CreateTemp(dir, ".g2w-token-*.tmp")
	if err != nil {
		return fmt.Errorf("create token file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write token file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync token file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close token file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace token file: %w", err)
	}
	return nil
}
