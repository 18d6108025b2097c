// Package localstore is the local-disk storage backend: objects are regular files under a
// root directory, at the path their key names.
package localstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// SettingPath is the setting that names the root directory. It must be an absolute path
// (the host resolves relative ones before passing it on).
const SettingPath = "LOCAL_STORAGE_PATH"

// Store keeps objects as files under a root directory. Put writes a hidden temporary file
// beside the target, syncs it and renames it into place, so readers of the directory see
// either the previous file or the complete new one. Objects stored part by part
// (sdk.PartStorage, parts.go) take the same way through a hidden file of their own. A Store
// is safe for concurrent use.
type Store struct {
	root  string
	log   sdk.Logger
	temps sdk.TempNames  // temporary files of Puts in flight, see createTemp
	parts partfile.Locks // unfinished part-wise objects in use, see parts.go
}

// Interface guards.
var (
	_ sdk.Storage       = (*Store)(nil)
	_ sdk.HealthChecker = (*Store)(nil)
	_ sdk.Factory       = Open
)

// Open is the plugin's sdk.Factory: it reads LOCAL_STORAGE_PATH from cfg and calls New.
// A missing or relative path gives an error wrapping sdk.ErrInvalidConfig.
func Open(_ context.Context, cfg sdk.Config, log sdk.Logger) (sdk.Storage, error) {
	sdk.ReserveMemory(directReserve) // the direct-I/O buffers of concurrent Puts
	root, err := cfg.Required(SettingPath)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return New(root, log)
}

// New returns a Store rooted at root, an absolute path. It creates root (mode 0755) if it
// is missing, and fails with an error wrapping sdk.ErrInvalidConfig when root is relative,
// is not a directory or cannot be written to (wrapping sdk.ErrPermission too when access is
// denied). log may be nil.
func New(root string, log sdk.Logger) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("local: %w: %s must be an absolute path, got %q", sdk.ErrInvalidConfig, SettingPath, root)
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Store{root: filepath.Clean(root), log: log}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", sdk.ErrInvalidConfig, SettingPath, mapErr("create root", s.root, err))
	}
	if err := s.probe(); err != nil {
		return nil, fmt.Errorf("%w: %s %s is not a writable directory: %w", sdk.ErrInvalidConfig, SettingPath, s.root, err)
	}
	return s, nil
}

// Root returns the absolute root directory.
func (s *Store) Root() string { return s.root }

// path returns the file name of key. Keys passed ValidKey, so the result is under the root.
func (s *Store) path(key string) string { return filepath.Join(s.root, filepath.FromSlash(key)) }

// Stat implements sdk.Storage. Only regular files are objects: a missing file, a directory
// or a path through a file give an error wrapping sdk.ErrNotFound. The Object has no digest.
func (s *Store) Stat(_ context.Context, key string) (sdk.Object, error) {
	if err := sdk.ValidKey(key); err != nil {
		return sdk.Object{}, err
	}
	p := s.path(key)
	fi, err := os.Lstat(p) // a symbolic link is not an object of this store
	if isNotExist(err) || (err == nil && !fi.Mode().IsRegular()) {
		return sdk.Object{}, fmt.Errorf("local: stat %s: %w", key, sdk.ErrNotFound)
	}
	if err != nil {
		return sdk.Object{}, mapErr("stat", p, err)
	}
	return sdk.Object{Key: key, Size: fi.Size(), Location: p}, nil
}

// Delete implements sdk.Storage. It removes the file of key; a missing file, or a
// directory where the file would be, is not an error and is left alone.
func (s *Store) Delete(_ context.Context, key string) error {
	if err := sdk.ValidKey(key); err != nil {
		return err
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil && !isNotExist(err) {
		return mapErr("delete", p, err)
	}
	return nil
}

// Health implements sdk.HealthChecker: the root must be a directory in which a file can be
// created, synced and removed.
func (s *Store) Health(context.Context) error {
	if err := s.probe(); err != nil {
		return fmt.Errorf("%w: %w", sdk.ErrUnavailable, err)
	}
	return nil
}

// probe checks that the root is a directory and writable.
func (s *Store) probe() error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return mapErr("stat root", s.root, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("local: root %s is not a directory", s.root)
	}
	f, name, err := s.createTemp(s.root, ".health")
	if err != nil {
		return mapErr("create probe file in", s.root, err)
	}
	defer s.temps.Release(name)
	defer os.Remove(name)
	if _, err := f.Write([]byte("ok\n")); err != nil {
		f.Close()
		return mapErr("write", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return mapErr("sync", name, err)
	}
	if err := f.Close(); err != nil {
		return mapErr("close", name, err)
	}
	if err := os.Remove(name); err != nil {
		return mapErr("remove", name, err)
	}
	return nil
}

// isNotExist reports whether err says the path does not exist, also when a parent is a
// regular file (ENOTDIR).
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// mapErr wraps a file system error with the operation and path, adding the sdk sentinel a
// host acts on: a full disk or quota is sdk.ErrInsufficientStorage, a refused access or a
// read-only file system is sdk.ErrPermission.
func mapErr(op, path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("local: %s %s: %w: %w", op, path, sdk.ErrInsufficientStorage, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return fmt.Errorf("local: %s %s: %w: %w", op, path, sdk.ErrPermission, err)
	}
	return fmt.Errorf("local: %s %s: %w", op, path, err)
}
