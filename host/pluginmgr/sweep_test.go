package pluginmgr

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a process to get a dead pid: %v", err)
	}
	return cmd.Process.Pid
}

// Only socket directories that killed hosts left are removed: this machine's whose host
// pid is gone, and older versions' (no pid in the name) that are old and whose socket is
// dead. A live host's, a young old-style one, another machine's, one holding anything but
// sockets and the executable link, and other names stay.
func TestSweepSocketDirs(t *testing.T) {
	tmp, err := os.MkdirTemp("", "sw") // short: socket paths have ~104 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	old := time.Now().Add(-time.Hour)
	mk := func(name string, socket string, mtime time.Time, extra string) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if socket != "" {
			l, err := net.Listen("unix", filepath.Join(dir, "plugin1"))
			if err != nil {
				t.Fatal(err)
			}
			if socket == "live" {
				t.Cleanup(func() { l.Close() })
			} else {
				l.(*net.UnixListener).SetUnlinkOnClose(false)
				l.Close() // the socket file stays, with nobody listening: a killed plugin's
			}
		}
		if err := os.Symlink("/proc/self/fd/3", filepath.Join(dir, "chunked-uploader-plugin-local")); err != nil {
			t.Fatal(err)
		}
		if extra != "" {
			if err := os.WriteFile(filepath.Join(dir, extra), []byte("mine"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tag, dead := machineTag(), deadPID(t)
	gone := []string{
		mk(fmt.Sprintf("%s%s-%d-1", socketDirPrefix, tag, dead), "dead", time.Now(), ""),
		mk(fmt.Sprintf("%s%s-%d-2", socketDirPrefix, tag, dead), "", time.Now(), ""), // no socket made
		mk(socketDirPrefix+"111", "dead", old, ""),
		mk(socketDirPrefix+"222", "", old, ""),
	}
	kept := []string{
		mk(fmt.Sprintf("%s%s-%d-3", socketDirPrefix, tag, os.Getppid()), "dead", old, ""), // its host lives
		mk(fmt.Sprintf("%s%s-%d-4", socketDirPrefix, "0badc0de", dead), "dead", old, ""),  // another machine's
		mk(fmt.Sprintf("%s%s-%d-5", socketDirPrefix, tag, dead), "dead", old, "notes.txt"),
		mk(socketDirPrefix+"333", "live", old, ""),
		mk(socketDirPrefix+"444", "dead", time.Now(), ""), // may be a launch in progress
		mk(socketDirPrefix+"mine", "", old, ""),           // a user's directory
		mk("someone-else-555", "dead", old, ""),
	}
	if n := sweepSocketDirs(hclog.NewNullLogger(), time.Minute); n != len(gone) {
		t.Errorf("removed %d directories, want %d", n, len(gone))
	}
	for _, d := range gone {
		if _, err := os.Lstat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", filepath.Base(d), err)
		}
	}
	for _, d := range kept {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(d), err)
		}
	}
}
