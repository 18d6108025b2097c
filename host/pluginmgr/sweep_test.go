package pluginmgr

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A killed host's socket directory (its socket dead, older than the grace) is removed; a
// live plugin's, a young one and other directories stay.
func TestSweepSocketDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	old := time.Now().Add(-time.Hour)
	mk := func(name string, listen, keepOpen bool, mtime time.Time) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if listen {
			l, err := net.Listen("unix", filepath.Join(dir, "plugin123"))
			if err != nil {
				t.Fatal(err)
			}
			if keepOpen {
				t.Cleanup(func() { l.Close() })
			} else {
				l.(*net.UnixListener).SetUnlinkOnClose(false)
				l.Close() // the socket file stays, with nobody listening: a killed plugin's
			}
		}
		if err := os.Symlink("/proc/self/fd/3", filepath.Join(dir, "chunked-uploader-plugin-local")); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dead := mk(socketDirPrefix+"111", true, false, old)
	empty := mk(socketDirPrefix+"222", false, false, old) // the plugin never made its socket
	liveDir := mk(socketDirPrefix+"333", true, true, old)
	young := mk(socketDirPrefix+"444", true, false, time.Now())
	other := mk("someone-else-555", true, false, old)

	if n := sweepSocketDirs(hclog.NewNullLogger(), time.Minute); n != 2 {
		t.Errorf("removed %d directories, want 2", n)
	}
	for _, d := range []string{dead, empty} {
		if _, err := os.Lstat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", filepath.Base(d), err)
		}
	}
	for _, d := range []string{liveDir, young, other} {
		if _, err := os.Lstat(d); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(d), err)
		}
	}
}
