package opstest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

const (
	serviceUser = "chunked-uploader"
	unitFile    = "/etc/systemd/system/chunked-uploader.service"
)

// fakeSystemctl stands for a systemctl that says systemd runs but whose daemon-reload fails
// (as on a machine whose systemd went away, or a broken bus); it logs every call.
const fakeSystemctl = `#!/bin/sh
echo "$*" >>"$FAKE_SYSTEMCTL_LOG"
case $1 in
  is-system-running) echo running ;;
  daemon-reload) echo "Failed to reload daemon: Transport endpoint is not connected" >&2; exit 1 ;;
  *) exit 1 ;;
esac
`

// TestDeployLinuxRollback runs the real install (deploy-linux.sh as root, with the real
// useradd, chown and /etc/systemd/system) where it cannot finish, and checks that it leaves
// nothing behind: no user chunked-uploader (unless it existed before), no data directories,
// no unit, .env as it was.
//
//   - systemd not running (this machine's own systemctl, only when it says "offline"): the
//     script must refuse before changing anything;
//   - daemon-reload fails (a fake systemctl first in PATH, so no real systemd is touched):
//     the script must undo what it did.
func TestDeployLinuxRollback(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test installs a service and needs root, and CI is set: run it as root")
		}
		t.Skip("this test installs a service and needs root")
	}
	for _, tool := range []string{"useradd", "userdel", "runuser"} {
		requireTool(t, tool, "passwd")
	}
	if _, err := os.Stat(unitFile); err == nil {
		t.Skipf("%s exists: this machine has the service installed; not touching it", unitFile)
	}
	_, err := user.Lookup(serviceUser)
	userBefore := err == nil
	t.Logf("user %s exists before the test: %v", serviceUser, userBefore)

	t.Run("SystemdNotRunning", func(t *testing.T) {
		out, _ := exec.Command("systemctl", "is-system-running").Output()
		if state := strings.TrimSpace(string(out)); state != "offline" {
			t.Skipf("systemctl is-system-running says %q: systemd runs here, so the real install would succeed", state)
		}
		inst := newRollbackInstall(t, userBefore)
		stderr, code := inst.run(t, os.Getenv("PATH"))
		if code == 0 || !strings.Contains(stderr, "systemd is not running") {
			t.Errorf("exit %d, stderr:\n%s\nwant a failure saying systemd is not running", code, stderr)
		}
		inst.checkNothingLeft(t)
	})

	t.Run("DaemonReloadFails", func(t *testing.T) {
		inst := newRollbackInstall(t, userBefore)
		fake := filepath.Join(inst.base, "fakebin")
		writeFile(t, filepath.Join(fake, "systemctl"), fakeSystemctl, 0o755)
		stderr, code := inst.run(t, fake+":"+os.Getenv("PATH"))
		calls, _ := os.ReadFile(inst.systemctlLog)
		t.Logf("exit %d; systemctl calls: %q; stderr:\n%s", code, calls, stderr)
		if !strings.Contains(string(calls), "daemon-reload") {
			t.Fatalf("the script never ran systemctl daemon-reload; stderr:\n%s", stderr)
		}
		if code == 0 {
			t.Errorf("exit 0 although daemon-reload failed")
		}
		inst.checkNothingLeft(t)
	})
}

// rollbackInstall is an install directory and data directories under a fresh directory in
// /srv (data paths must not be in /tmp, and the service user must be able to reach .env).
type rollbackInstall struct {
	base, dir, data  string
	envMode          fs.FileMode
	userBefore       bool
	systemctlLog     string
	envUID, envGroup uint32
}

func newRollbackInstall(t *testing.T, userBefore bool) *rollbackInstall {
	t.Helper()
	base := fmt.Sprintf("/srv/opstest-rollback-%d", time.Now().UnixNano())
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	inst := &rollbackInstall{base: base, data: filepath.Join(base, "data"), userBefore: userBefore,
		systemctlLog: filepath.Join(base, "systemctl.log")}
	t.Cleanup(func() {
		// Whatever the script left, so that a failed run does not break the next.
		if !userBefore {
			if _, err := user.Lookup(serviceUser); err == nil {
				exec.Command("userdel", serviceUser).Run()
				exec.Command("groupdel", serviceUser).Run()
			}
		}
		os.Remove(unitFile)
		if m, _ := filepath.Glob(unitFile + ".*"); len(m) > 0 {
			for _, f := range m {
				os.Remove(f)
			}
		}
		os.RemoveAll(base)
	})
	env := strings.Join([]string{
		"API_KEY=" + harness.APIKey,
		"JWT_SECRET=" + harness.JWTSecret,
		"STORAGE_BACKEND=local",
		"LOCAL_STORAGE_PATH=" + inst.data + "/uploads",
		"TEMP_STORAGE_PATH=" + inst.data + "/staging",
		"DATABASE_PATH=" + inst.data + "/db/uploads.db",
		"",
	}, "\n")
	inst.dir = installDir(t, base, "deploy-linux.sh", env, "local")
	fi, err := os.Stat(filepath.Join(inst.dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	inst.envMode = fi.Mode().Perm()
	st := fi.Sys().(*syscall.Stat_t)
	inst.envUID, inst.envGroup = st.Uid, st.Gid
	return inst
}

// run runs the install with PATH path and returns stderr and the exit status.
func (inst *rollbackInstall) run(t *testing.T, path string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(inst.dir, "deploy-linux.sh"))
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir(), "FAKE_SYSTEMCTL_LOG=" + inst.systemctlLog}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	t.Logf("deploy-linux.sh stdout:\n%s", out.String())
	return errb.String(), code
}

// checkNothingLeft fails for every change the install left behind.
func (inst *rollbackInstall) checkNothingLeft(t *testing.T) {
	t.Helper()
	_, err := user.Lookup(serviceUser)
	if exists := err == nil; exists != inst.userBefore {
		t.Errorf("user %s exists: %v, before the install: %v", serviceUser, exists, inst.userBefore)
	}
	if _, err := os.Stat(unitFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s left behind (%v)", unitFile, err)
	}
	if m, _ := filepath.Glob(unitFile + ".*"); len(m) > 0 {
		t.Errorf("temporary unit files left behind: %v", m)
	}
	if _, err := os.Stat(inst.data); !errors.Is(err, fs.ErrNotExist) {
		var left []string
		filepath.WalkDir(inst.data, func(p string, _ fs.DirEntry, _ error) error { left = append(left, p); return nil })
		t.Errorf("data directories left behind: %v", left)
	}
	fi, err := os.Stat(filepath.Join(inst.dir, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != inst.envMode || st.Uid != inst.envUID || st.Gid != inst.envGroup {
		t.Errorf(".env is now mode %04o uid %d gid %d, was %04o uid %d gid %d",
			fi.Mode().Perm(), st.Uid, st.Gid, inst.envMode, inst.envUID, inst.envGroup)
	}
}
