package pluginmgr

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// socketDirPrefix starts the names of the directories, in os.TempDir, that hold a
// plugin's Unix socket (and the link to, or copy of, its pinned executable): launch makes
// one per plugin process, named socketDirPrefix + this machine's tag + "-" + the host's
// pid + "-" + random digits (socketDirPattern).
const socketDirPrefix = "chunked-uploader-plugin-"

// socketDirPattern is the os.MkdirTemp pattern of this host's socket directories.
func socketDirPattern() string {
	return fmt.Sprintf("%s%s-%d-", socketDirPrefix, machineTag(), os.Getpid())
}

// machineTag tells apart the machines that may share a temp directory (over NFS): a hash
// of the host name, short enough to keep socket paths within the ~104 bytes they may have.
func machineTag() string {
	name, _ := os.Hostname()
	h := fnv.New32a()
	io.WriteString(h, name)
	return fmt.Sprintf("%08x", h.Sum32())
}

// sweepSocketDirs removes the socket directories that hosts killed before they could
// remove them left in os.TempDir (SIGKILL, a crash, the OOM killer), and reports how many.
// It removes only directories of this user with a socket directory's name that hold
// nothing but sockets and the plugin's executable link or copy, entry by entry (never
// recursively), and only:
//   - for a name with this machine's tag: when the host process it names is gone;
//   - for a name of older versions (the prefix and digits alone): when it is older than
//     grace (a launch in progress makes its socket sooner) and no socket in it accepts a
//     connection.
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
	rest, ok := strings.CutPrefix(e.Name(), socketDirPrefix)
	if !ok {
		return false
	}
	fi, err := e.Info()
	if err != nil || !ownedByMe(fi) || !onlySocketsAndExecutable(dir) {
		return false
	}
	if digits(rest) { // older versions: no pid in the name
		return time.Since(fi.ModTime()) >= grace && !live(dir)
	}
	parts := strings.Split(rest, "-")
	if len(parts) != 3 || parts[0] != tag || !digits(parts[1]) || !digits(parts[2]) {
		return false // another machine's, or not a socket directory
	}
	pid, err := strconv.Atoi(parts[1])
	return err == nil && pid != os.Getpid() && processGone(pid)
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
		case strings.HasPrefix(e.Name(), socketDirPrefix) && (e.Type()&fs.ModeSymlink != 0 || e.Type().IsRegular()):
			exe++
		default:
			return false
		}
	}
	return exe <= 1
}

// removeSocketDir removes dir's entries one by one, then dir.
func removeSocketDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
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
