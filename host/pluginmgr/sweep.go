package pluginmgr

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// socketDirPrefix names the directories, in os.TempDir, that hold a plugin's Unix socket
// (and the link to its pinned executable); launch makes one per plugin process.
const socketDirPrefix = "chunked-uploader-plugin-"

// sweepSocketDirs removes the socket directories that hosts killed before they could
// remove them left in os.TempDir (SIGKILL, a crash, the OOM killer): those of this user
// older than grace in which no socket answers. A directory of a running plugin, of any
// host, has a socket that accepts; one younger than grace may be a launch in progress,
// whose socket is not made yet. It returns how many it removed.
func sweepSocketDirs(log hclog.Logger, grace time.Duration) int {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), socketDirPrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if fi, err := e.Info(); err != nil || time.Since(fi.ModTime()) < grace || !ownedByMe(fi) {
			continue
		}
		if live(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			log.Debug("removing a dead plugin socket directory", "dir", dir, "error", err)
			continue
		}
		removed++
	}
	if removed > 0 {
		log.Info("removed the socket directories of plugins whose host was killed", "count", removed, "dir", tmp)
	}
	return removed
}

// live tells whether a socket in dir may be in use: it accepts a connection, or answers
// anything but "refused" (nobody listens), or dir cannot be read (it is then left alone).
func live(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if e.Type()&os.ModeSocket == 0 {
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
