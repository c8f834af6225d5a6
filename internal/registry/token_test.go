package registry

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	tok, err := loadToken(dir, log)
	if err != nil {
		t.Fatalf("loadToken: %v", err)
	}
	path := filepath.Join(dir, TokenFile)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %v mode %v, want 0600", err, fi.Mode())
	}
	if len(tok) != 43 || strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Errorf("token %q, want 43 base64url characters", tok)
	}
	again, err := loadToken(dir, log)
	if err != nil || again != tok {
		t.Errorf("second loadToken = %q, %v, want the same token", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := loadToken(dir, log); err != nil || again != tok {
		t.Errorf("loadToken of a 0644 file = %q, %v", again, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode after loadToken = %v, want 0600", fi.Mode().Perm())
	}
	other, err := loadToken(t.TempDir(), log)
	if err != nil || other == tok {
		t.Errorf("a token in another folder = %q, %v, want a different one", other, err)
	}
	for _, bad := range []string{"", "short\n", strings.Repeat("a", 40) + "\n" + strings.Repeat("b", 40)} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := loadToken(dir, log); err == nil || !strings.Contains(err.Error(), "remove the file") {
			t.Errorf("loadToken of %q = %v, want an error saying to remove it", bad, err)
		}
	}
}
