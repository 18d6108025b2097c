package localstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Validate checks the settings as Open would, without creating or writing anything: it is
// the plugin's validator (sdk.WithValidator), which the host's --check-config runs.
// LOCAL_STORAGE_PATH must be set, absolute, and name a directory or a path that can be
// created as one (its nearest existing ancestor is a directory). Errors wrap
// sdk.ErrInvalidConfig and name the setting.
func Validate(cfg sdk.Config) error {
	root, err := cfg.Required(SettingPath)
	if err != nil {
		return err
	}
	if !filepath.IsAbs(root) {
		return fmt.Errorf("%w: %s must be an absolute path, got %q", sdk.ErrInvalidConfig, SettingPath, root)
	}
	for p := filepath.Clean(root); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return nil
		case err == nil:
			return fmt.Errorf("%w: %s %s cannot be used: %s is not a directory", sdk.ErrInvalidConfig, SettingPath, root, p)
		case errors.Is(err, syscall.ENOTDIR): // a parent is a file: said when the loop gets there
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%w: %s %s cannot be used: %w", sdk.ErrInvalidConfig, SettingPath, root, err)
		}
		if filepath.Dir(p) == p {
			return fmt.Errorf("%w: %s %s: no part of it exists", sdk.ErrInvalidConfig, SettingPath, root)
		}
	}
}
