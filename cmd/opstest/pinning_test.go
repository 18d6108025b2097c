package opstest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestPluginFilesWritableByOthers: a PLUGIN_DIR or a plugin binary that its group or others
// may write is refused at start and by --check-config, with exit status 2 and a message
// that names it and says how to fix it.
func TestPluginFilesWritableByOthers(t *testing.T) {
	bins := harness.BinDir()
	for _, c := range []struct {
		name           string
		dirMode, bMode fs.FileMode
		want           string
	}{
		{"Dir", 0o777, 0o755, "PLUGIN_DIR"},
		{"GroupDir", 0o775, 0o755, "PLUGIN_DIR"},
		{"Binary", 0o755, 0o757, "chunked-uploader-plugin-local is writable by its group or others"},
		{"GroupBinary", 0o755, 0o775, "chunked-uploader-plugin-local is writable by its group or others"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "plugins")
			copyFile(t, filepath.Join(bins, harness.PluginPrefix+"local"), filepath.Join(dir, harness.PluginPrefix+"local"), 0o755)
			chmod(t, filepath.Join(dir, harness.PluginPrefix+"local"), c.bMode)
			chmod(t, dir, c.dirMode)
			for _, args := range [][]string{nil, {"-check-config"}} {
				work := t.TempDir()
				env := hostEnv(t, work)
				env["PLUGIN_DIR"] = dir
				p := harness.Exec(t, filepath.Join(bins, harness.HostBinary), args, work, t.TempDir(), env)
				code := p.WaitExit(t, time.Minute)
				stderr := p.Stderr()
				if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "chmod go-w") {
					t.Errorf("%v: exit %d, stderr:\n%s\nwant exit 2 and a message with %q and chmod go-w", args, code, stderr, c.want)
				} else {
					t.Logf("%v: exit %d: %s", args, code, namingLine(stderr, c.want))
				}
			}
		})
	}
}

func chmod(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestPinnedPluginNoSwapWindow: PLUGIN_SHA256 pins the binary that runs, not a file that
// was read once. The plugin path is a symbolic link to a named pipe that yields the genuine
// plugin's bytes; before the pipe ends, the link is pointed at another program. A host that
// checks the file by path and then starts it by path would hash the genuine bytes and run
// the other program, which leaves a marker file. The host must refuse, and the other
// program never run.
func TestPinnedPluginNoSwapWindow(t *testing.T) {
	bins := harness.BinDir()
	genuine, err := os.ReadFile(filepath.Join(bins, harness.PluginPrefix+"local"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(genuine)
	dir := filepath.Join(t.TempDir(), "plugins")
	fifo := filepath.Join(dir, "genuine.pipe")
	marker := filepath.Join(t.TempDir(), "impostor-ran")
	impostor := filepath.Join(dir, "impostor")
	writeFile(t, impostor, "#!/bin/sh\ntouch '"+marker+"'\nexit 1\n", 0o755)
	if err := syscall.Mkfifo(fifo, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, harness.PluginPrefix+"local")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}

	// The pipe's writer: it waits for a reader, writes the genuine bytes, swaps the link,
	// then ends the pipe.
	swapped := make(chan string, 1)
	stopWriter := make(chan struct{})
	go func() {
		var w *os.File
		for {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err == nil {
				w = f
				break
			}
			select {
			case <-stopWriter:
				swapped <- "no reader opened the pipe"
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		if err := syscall.SetNonblock(int(w.Fd()), false); err != nil {
			swapped <- err.Error()
			return
		}
		_, err := w.Write(genuine)
		tmp := link + ".new"
		if err == nil {
			err = os.Symlink(impostor, tmp)
		}
		if err == nil {
			err = os.Rename(tmp, link)
		}
		w.Close()
		if err != nil {
			swapped <- err.Error()
			return
		}
		swapped <- "swapped the link after the genuine bytes"
	}()

	work := t.TempDir()
	env := hostEnv(t, work)
	env["PLUGIN_DIR"] = dir
	env["PLUGIN_SHA256"] = hex.EncodeToString(sum[:])
	p := harness.Exec(t, filepath.Join(bins, harness.HostBinary), nil, work, t.TempDir(), env)
	code := p.WaitExit(t, time.Minute)
	close(stopWriter)
	t.Logf("writer: %s", <-swapped)
	t.Logf("exit %d, stderr:\n%s", code, p.Stderr())
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the host ran the program the link pointed to after its check (it created %s)", marker)
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if code != 2 {
		t.Errorf("exit %d, want 2 (a plugin that is not a regular file cannot be pinned)", code)
	}
}

// TestDatabaseFileMode: the database and its -wal and -shm files are created readable and
// writable by their owner only.
func TestDatabaseFileMode(t *testing.T) {
	work := t.TempDir()
	env := hostEnv(t, work)
	p := harness.Exec(t, filepath.Join(harness.BinDir(), harness.HostBinary), nil, work, t.TempDir(), env)
	p.WaitHealthy(t)
	upload(t, p.Base, "mode.bin", []byte("database file mode\n"))
	db := env["DATABASE_PATH"]
	for _, f := range []string{db, db + "-wal", db + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(f), perm)
		} else {
			t.Logf("%s: %04o", filepath.Base(f), perm)
		}
	}
}
