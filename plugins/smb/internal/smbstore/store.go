package smbstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sync"

	"github.com/hirochachacha/go-smb2"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/partfile"
)

// Store keeps objects as files under one directory of an SMB share. It is safe for
// concurrent use: operations share one session, which go-smb2 multiplexes.
type Store struct {
	cfg   Config
	log   sdk.Logger
	temps sdk.TempNames  // temporary files of Puts in flight, see Put
	parts partfile.Locks // unfinished part-wise objects in use, see parts.go

	mu     sync.Mutex // guards the fields below; held while connecting
	cur    *session   // nil until the first operation, and after the connection broke
	active int        // operations in progress (see begin)
	closed bool
}

// Interface guards.
var (
	_ sdk.Storage       = (*Store)(nil)
	_ sdk.HealthChecker = (*Store)(nil)
	_ sdk.Closer        = (*Store)(nil)
	_ sdk.PartStorage   = (*Store)(nil)
)

// Open is the plugin's sdk.Factory: it decodes the settings and builds a Store. It does not
// connect; the first operation (usually Health) does.
func Open(_ context.Context, c sdk.Config, log sdk.Logger) (sdk.Storage, error) {
	cfg, err := ParseConfig(c)
	if err != nil {
		return nil, err
	}
	if c.Get("SMB_MOUNT_POINT") != "" {
		log.Warn("SMB_MOUNT_POINT is ignored: the plugin talks to the server itself and needs no mount")
	}
	return New(cfg, log), nil
}

// New builds a Store from decoded settings.
func New(cfg Config, log sdk.Logger) *Store {
	return &Store{cfg: cfg, log: log}
}

// Close implements sdk.Closer. Operations started before Close finish; the session is
// closed (logged off) when the last of them ends. Later operations fail.
func (st *Store) Close() error {
	st.mu.Lock()
	st.closed = true
	var s *session
	if st.active == 0 {
		s, st.cur = st.cur, nil
	}
	st.mu.Unlock()
	if s != nil {
		s.close()
	}
	return nil
}

// Stat implements sdk.Storage. The SHA-256 of a stored file is not known without reading it,
// so Object.SHA256 stays empty.
func (st *Store) Stat(ctx context.Context, key string) (sdk.Object, error) {
	if err := st.begin(); err != nil {
		return sdk.Object{}, err
	}
	defer st.end()
	name := st.cfg.join(key)
	var fi os.FileInfo
	err := st.do(ctx, func(fs *smb2.Share) (err error) {
		fi, err = fs.Stat(name)
		return err
	})
	if err == nil && fi.IsDir() {
		err = fmt.Errorf("%w: %s is a directory", sdk.ErrNotFound, name)
	}
	if err != nil {
		return sdk.Object{}, fmt.Errorf("smb: stat %q: %w", key, st.mapError(err))
	}
	return sdk.Object{Key: key, Size: fi.Size(), Location: st.cfg.location(key)}, nil
}

// Delete implements sdk.Storage. A missing file is not an error, and neither is a directory
// under key (it is not an object). Directories the deleted file leaves empty stay.
func (st *Store) Delete(ctx context.Context, key string) error {
	if err := st.begin(); err != nil {
		return err
	}
	defer st.end()
	name := st.cfg.join(key)
	err := st.do(ctx, func(fs *smb2.Share) error {
		fi, err := fs.Lstat(name)
		if err != nil || fi.IsDir() {
			return err
		}
		return fs.Remove(name)
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("smb: delete %q: %w", key, st.mapError(err))
	}
	return nil
}

// Health implements sdk.HealthChecker: it connects (login and mount) when needed, and writes
// and removes a probe file in the objects' directory, which it creates when missing.
func (st *Store) Health(ctx context.Context) error {
	if err := st.begin(); err != nil {
		return err
	}
	defer st.end()
	probe := path.Join(st.cfg.Path, sdk.RandomTempName(".chunked-uploader-health", ".tmp"))
	err := st.do(ctx, func(fs *smb2.Share) error {
		if st.cfg.Path != "" {
			if err := fs.MkdirAll(st.cfg.Path, 0o755); err != nil {
				return err
			}
		}
		if err := fs.WriteFile(probe, []byte("ok"), 0o644); err != nil {
			return err
		}
		return fs.Remove(probe)
	})
	if err != nil {
		return fmt.Errorf("smb: health check of //%s/%s/%s: %w", st.cfg.addr(), st.cfg.Share, st.cfg.Path, st.mapError(err))
	}
	return nil
}
