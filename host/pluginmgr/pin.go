package pluginmgr

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// procFD is where a process finds its own open files by number (Linux). A variable, so
// that tests can take the other path.
var procFD = "/proc/self/fd"

// pinnedExecutable opens the plugin binary at path once and returns a path that runs that
// very file, so that what was checked is what runs, with no window between the check and
// the start in which the file at path could be replaced:
//
//   - the file must be a regular file that neither its group nor others may write;
//   - when want (hex SHA-256) is set, the open file must have that digest.
//
// Where the system has /proc/self/fd, the open file is passed to the new process as its
// descriptor 3 (inherit, set it as the command's only ExtraFiles entry) and the returned
// path is a symbolic link in dir (a directory only this user can enter) to
// /proc/self/fd/3: executing it resolves, in the new process, to the checked file. The
// descriptor stays open in the plugin, so that an interpreter of a "#!" plugin can read
// the script through the same link. Elsewhere the checked bytes are copied to dir while
// they are hashed, the copy runs, and inherit is nil. release closes the file; call it
// once the process has started.
func pinnedExecutable(path, want, dir string) (exe string, inherit *os.File, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w: storage plugin: %w", ErrRefused, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return "", nil, nil, fmt.Errorf("%w: storage plugin: %w", ErrRefused, err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, nil, fmt.Errorf("%w: storage plugin %s is not a regular file", ErrRefused, path)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return "", nil, nil, fmt.Errorf("%w: storage plugin %s may be changed by other users (mode %04o): make it writable by its owner only (chmod go-w %s)",
			ErrRefused, path, perm, path)
	}
	var wantSum []byte
	if want != "" {
		if wantSum, err = hex.DecodeString(want); err != nil || len(wantSum) != sha256.Size {
			return "", nil, nil, fmt.Errorf("%w: PLUGIN_SHA256 %q is not a SHA-256 in hex", ErrRefused, want)
		}
	}
	name := filepath.Join(dir, filepath.Base(path))
	if st, serr := os.Stat(procFD); serr == nil && st.IsDir() {
		if wantSum != nil {
			if err := checkSum(io.NewSectionReader(f, 0, fi.Size()), path, want, wantSum); err != nil {
				return "", nil, nil, err
			}
		}
		if err := os.Symlink(filepath.Join(procFD, strconv.Itoa(inheritedFD)), name); err != nil {
			return "", nil, nil, fmt.Errorf("storage plugin: %w", err)
		}
		return name, f, func() { f.Close() }, nil
	}
	// No /proc: run a private copy.
	dst, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o700)
	if err != nil {
		return "", nil, nil, fmt.Errorf("storage plugin: copy to run: %w", err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(dst, h), io.NewSectionReader(f, 0, fi.Size()))
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("storage plugin: copy to run: %w", err)
	}
	if wantSum != nil && subtle.ConstantTimeCompare(h.Sum(nil), wantSum) != 1 {
		return "", nil, nil, mismatch(path, hex.EncodeToString(h.Sum(nil)), want)
	}
	return name, nil, func() { f.Close() }, nil
}

// inheritedFD is the descriptor number of the first ExtraFiles entry in a new process.
const inheritedFD = 3

func checkSum(r io.Reader, path, want string, wantSum []byte) error {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("%w: storage plugin %s: %w", ErrRefused, path, err)
	}
	if subtle.ConstantTimeCompare(h.Sum(nil), wantSum) != 1 {
		return mismatch(path, hex.EncodeToString(h.Sum(nil)), want)
	}
	return nil
}

func mismatch(path, got, want string) error {
	return fmt.Errorf("%w: %s: its SHA-256 (%s) does not match PLUGIN_SHA256 (%s)", ErrRefused, path, got, want)
}
