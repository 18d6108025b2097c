package pluginmgr

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// onlyNotes removes the executable link from dir, leaving its socket and a user's
// non-executable file named like a plugin.
func onlyNotes(t *testing.T, dir string) string {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, "chunked-uploader-plugin-local")); err != nil {
		t.Fatal(err)
	}
	return dir
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
	name := func(tag string, pid, n int) string {
		return fmt.Sprintf("%s%s-%s-%06d", socketDirPrefix, tag, strconv.FormatInt(int64(pid), 36), n)
	}
	gone := []string{
		mk(name(tag, dead, 1), "dead", time.Now(), ""),
		mk(name(tag, dead, 2), "", time.Now(), ""), // no socket made
		mk(legacyDirPrefix+"111", "dead", old, ""),
		mk(legacyDirPrefix+"222", "", old, ""),
	}
	kept := []string{
		mk(name(tag, os.Getppid(), 3), "dead", old, ""), // its host lives
		mk(name("0badc0", dead, 4), "dead", old, ""),    // another machine's
		mk(name(tag, dead, 5), "dead", old, "notes.txt"),
		onlyNotes(t, mk(name(tag, dead, 7), "dead", old, "chunked-uploader-plugin-mynotes")), // not executable: a user's
		mk(name(tag, dead, 6), "live", old, ""),                                              // a container's with the same host name
		mk(legacyDirPrefix+"333", "live", old, ""),
		mk(legacyDirPrefix+"444", "dead", time.Now(), ""), // may be a launch in progress
		mk(legacyDirPrefix+"mine", "", old, ""),           // a user's directory
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

// A TMPDIR under which a plugin socket's path could pass a Unix socket's limit is refused
// with a message naming TMPDIR, whatever pid and random suffix a launch would draw; /tmp,
// macOS's usual TMPDIR (48 bytes) and a test's t.TempDir (up to 56) are taken.
func TestCheckTempDir(t *testing.T) {
	for _, ok := range []string{"/tmp", "/var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T",
		"/tmp/TestNoTemporariesLeftAfterShutdown3615311365/001"} {
		if err := checkTempDir(ok); err != nil {
			t.Errorf("%s (%d bytes): %v", ok, len(ok), err)
		}
	}
	long := "/" + strings.Repeat("x", 70)
	if err := checkTempDir(long); err == nil || !strings.Contains(err.Error(), "TMPDIR") {
		t.Fatalf("a TMPDIR of %d bytes: %v", len(long), err)
	}
	// The worst case is what a launch can make: the longest pid and suffix fit.
	dir := filepath.Join("/tmp", socketDirPrefix+machineTag()+"-"+strconv.FormatInt(1<<22-1, 36)+"-"+strings.Repeat("z", randomLen))
	if got, want := len(dir+"/plugin4294967295"), longestSocketPath("/tmp"); got > want {
		t.Fatalf("a socket path of %d bytes, the check counts %d", got, want)
	}
}

// makeSocketDir makes a private directory that the sweep takes for this live host's: it
// stays, while one with the same form and a dead pid goes.
func TestMakeSocketDir(t *testing.T) {
	tmp, err := os.MkdirTemp("", "sw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	dir, err := makeSocketDir()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 || !strings.HasPrefix(filepath.Base(dir), socketDirPrefix) {
		t.Fatalf("made %s: %v %v", dir, fi, err)
	}
	pid := strconv.FormatInt(int64(os.Getpid()), 36)
	dead := strings.Replace(dir, "-"+pid+"-", "-"+strconv.FormatInt(int64(deadPID(t)), 36)+"-", 1)
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	if n := sweepSocketDirs(hclog.NewNullLogger(), time.Minute); n != 1 {
		t.Fatalf("removed %d directories, want the dead host's only", n)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("this host's directory was removed: %v", err)
	}
}
