package localstore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Validate refuses what Open refuses, names the setting, and creates nothing.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, root := range map[string]string{
		"missing":    "",
		"relative":   "uploads",
		"below file": filepath.Join(file, "uploads"),
		"is a file":  file,
	} {
		err := Validate(sdk.Config{SettingPath: root})
		if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), SettingPath) {
			t.Errorf("%s: Validate(%q) = %v, want an invalid configuration naming %s", name, root, err, SettingPath)
		}
	}
	root := filepath.Join(dir, "a", "b")
	if err := Validate(sdk.Config{SettingPath: root}); err != nil {
		t.Fatalf("Validate(%s): %v", root, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Validate created %s (%v)", root, err)
	}
}
