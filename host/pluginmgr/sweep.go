package pluginmgr

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// legacyDirPrefix started the names of socket directories before they named their host:
// the prefix and os.MkdirTemp's digits.
const legacyDirPrefix = "chunked-uploader-plugin-"

// socketDirPrefix starts the names of the directories, in os.TempDir, that hold a plugin's
// Unix socket (and the link to, or copy of, its pinned executable): launch makes one per
// plugin process (makeSocketDir), named socketDirPrefix + this machine's tag + "-" + the
// host's pid in base 36 + "-" + randomLen random base-36 characters. The name is short,
// and of bounded length, because the socket's path inside it (…/plugin<digits>) must fit
// the 103 bytes of a Unix socket address.
const socketDirPrefix = "cup-"

const randomLen = 6

// makeSocketDir makes a fresh socket directory of this host in os.TempDir, mode 0700.
func makeSocketDir() (string, error) {
	base := socketDirPrefix + machineTag() + "-" + strconv.FormatInt(int64(os.Getpid()), 36) + "-"
	const chars = "0123456789abcdefghijklmnopqrstuvwxyz"
	for range 100 {
		b := []byte(base)
		for range randomLen {
			b = append(b, chars[rand.IntN(len(chars))])
		}
		dir := filepath.Join(os.TempDir(), string(b))
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("no fresh name for a directory in %s after 100 tries", os.TempDir())
}

// maxSocketPath is the longest socket path every Unix takes (sun_path is 104 bytes on
// macOS and the BSDs, 108 on Linux, both with the terminating NUL).
const maxSocketPath = 103

// longestSocketPath is the longest path a plugin socket may get under tmp: the directory
// with the longest pid (base 36 of a 22-bit pid), and go-plugin's socket name, plugin<up
// to 10 digits>. It does not depend on chance, so a TMPDIR is always taken or always
// refused.
func longestSocketPath(tmp string) int {
	return len(tmp) + len("/"+socketDirPrefix) + 6 + len("-zzzzz-") + randomLen + len("/plugin") + 10
}

// checkTempDir reports an error if a plugin socket under tmp could have a path too long
// for a Unix socket.
func checkTempDir(tmp string) error {
	if n := longestSocketPath(tmp); n > maxSocketPath {
		return fmt.Errorf("TMPDIR %s is too long for the plugin's Unix socket: its path could take %d bytes, more than the %d a Unix socket may have; set TMPDIR to a directory of at most %d bytes (such as /tmp)",
			tmp, n, maxSocketPath, len(tmp)-(n-maxSocketPath))
	}
	return nil
}

// machineTag tells apart the machines that may share a temp directory (over NFS): a hash
// of the host name, in 6 hex digits to keep socket paths short.
func machineTag() string {
	name, _ := os.Hostname()
	h := fnv.New32a()
	io.WriteString(h, name)
	return fmt.Sprintf("%06x", h.Sum32()&0xffffff)
}

// sweepSocketDirs removes the socket directories that hosts killed before they could
// remove them left in os.TempDir (SIGKILL, a crash, the OOM killer), and reports how many.
// It removes only directories of this user with a socket directory's name that hold
// nothing but sockets and the plugin's executable link or copy, entry by entry (never
// recursively), in which no socket accepts a connection, and only:
//   - for a name with this machine's tag: when the host process it names is gone (on this
//     machine, or in this pid namespace: a container with the same host name and its own
//     pids has live sockets, which accept);
//   - for a name of older versions (legacyDirPrefix and digits): when it is older than
//     grace (a launch in progress makes its socket sooner).
func sweepSocketDirs(log hclog.Logger, grace time.Duration) int {
	tmp := os.TempDir()
	d, err := os.Open(tmp)
	if err != nil {
		return 0
	}
	defer d.Close()
	tag := machineTag()
	removed := 0
	for {
		entries, err := d.ReadDir(256) // a temp directory may be huge: a batch at a time
		for _, e := range entries {
			if e.IsDir() && sweepable(filepath.Join(tmp, e.Name()), e, tag, grace) && removeSocketDir(filepath.Join(tmp, e.Name())) {
				removed++
			}
		}
		if err != nil {
			break
		}
	}
	if removed > 0 {
		log.Info("removed the socket directories of plugins whose host was killed", "count", removed, "dir", tmp)
	}
	return removed
}

// sweepable tells whether the socket directory dir may be removed (see sweepSocketDirs).
func sweepable(dir string, e fs.DirEntry, tag string, grace time.Duration) bool {
	legacy, isLegacy := strings.CutPrefix(e.Name(), legacyDirPrefix)
	rest, isNew := strings.CutPrefix(e.Name(), socketDirPrefix)
	switch {
	case isLegacy && !digits(legacy), !isLegacy && !isNew:
		return false
	}
	fi, err := e.Info()
	if err != nil || !ownedByMe(fi) || !onlySocketsAndExecutable(dir) {
		return false
	}
	if isLegacy {
		return time.Since(fi.ModTime()) >= grace && !live(dir)
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 || parts[0] != tag || len(parts[2]) != randomLen || strings.Trim(parts[2], "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		return false // another machine's, or not a socket directory
	}
	pid, err := strconv.ParseInt(parts[1], 36, 32)
	return err == nil && int(pid) != os.Getpid() && processGone(int(pid)) && !live(dir)
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// onlySocketsAndExecutable tells whether dir holds only sockets and at most one other
// entry named like a plugin executable (a symbolic link or a regular file).
func onlySocketsAndExecutable(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	exe := 0
	for _, e := range entries {
		switch {
		case e.Type()&fs.ModeSocket != 0:
		case strings.HasPrefix(e.Name(), legacyDirPrefix) && (e.Type()&fs.ModeSymlink != 0 || executable(e)):
			exe++
		default:
			return false
		}
	}
	return exe <= 1
}

// executable tells whether e is a regular file with an execute bit (the private copy of
// a plugin binary that launch makes without /proc).
func executable(e fs.DirEntry) bool {
	fi, err := e.Info()
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o100 != 0
}

// removeSocketDir removes dir's entries one by one, then dir, if it still holds only
// sockets and the executable.
func removeSocketDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil || !onlySocketsAndExecutable(dir) {
		return false
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return os.Remove(dir) == nil
}

// live tells whether a socket in dir may be in use: it accepts a connection, or answers
// anything but "refused" (nobody listens), or dir cannot be read (it is then left alone).
func live(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSocket == 0 {
			continue
		}
		c, err := net.DialTimeout("unix", filepath.Join(dir, e.Name()), time.Second)
		if err == nil {
			c.Close()
			return true
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist) {
			return true // a slow or odd answer: not certainly dead
		}
	}
	return false
}
