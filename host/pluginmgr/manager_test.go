package pluginmgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// pluginBin is the real local storage plugin and faultBin the fault-injection plugin
// (testdata/faultplugin). The local plugin is CHUNKED_UPLOADER_BIN_DIR's when that is set
// (make builds bin/ first), else built once for these tests from its own module
// (plugins/local, whose go.mod reaches the sdk through replace directives), so that the
// tests also run with GOWORK=off.
var pluginBin, faultBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pluginmgr-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := func(what, moduleDir, pkg, out string) bool {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = moduleDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: building the %s plugin: %v\n%s", what, err, b)
			return false
		}
		return true
	}
	const local = "chunked-uploader-plugin-local"
	if bin := os.Getenv("CHUNKED_UPLOADER_BIN_DIR"); bin != "" {
		pluginBin, err = filepath.Abs(filepath.Join(bin, local))
		if fi, serr := os.Stat(pluginBin); err != nil || serr != nil || fi.Mode().Perm()&0o111 == 0 {
			fmt.Fprintf(os.Stderr, "FAIL: %s is not an executable (CHUNKED_UPLOADER_BIN_DIR=%q; run make build)\n", pluginBin, bin)
			return 1
		}
	} else {
		pluginBin = filepath.Join(dir, local)
		if !build("local", filepath.Join("..", "..", "plugins", "local"), ".", pluginBin) {
			return 1
		}
	}
	faultBin = filepath.Join(dir, "chunked-uploader-plugin-fault")
	if !build("fault", ".", "./testdata/faultplugin", faultBin) {
		return 1
	}
	return m.Run()
}

func newManager(t *testing.T, mod ...func(*Options)) (*Manager, string) {
	t.Helper()
	root := t.TempDir()
	opt := Options{
		Name: "local", Path: pluginBin,
		Settings:       map[string]string{"LOCAL_STORAGE_PATH": root},
		Env:            []string{"PATH=" + os.Getenv("PATH")},
		RestartBackoff: 10 * time.Millisecond,
	}
	for _, f := range mod {
		f(&opt)
	}
	m := New(opt)
	t.Cleanup(m.Close)
	return m, root
}

func (m *Manager) pid(t *testing.T) int {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil {
		t.Fatal("no plugin running")
	}
	return m.cur.pid
}

func TestPutThroughPlugin(t *testing.T) {
	m, root := newManager(t)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("0123456789"), 300_000)
	obj, err := m.Put(context.Background(), "a/b/c.bin", bytes.NewReader(content), int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if obj.Location != filepath.Join(root, "a/b/c.bin") || !bytes.Equal(obj.SHA256, sum[:]) {
		t.Fatalf("object = %+v", obj)
	}
	got, err := os.ReadFile(obj.Location)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("delivered file differs (%v)", err)
	}
	// The init checksum guard: a wrong expected digest leaves nothing.
	_, err = m.PutChecked(context.Background(), "a/b/d.bin", bytes.NewReader(content), int64(len(content)), make([]byte, 32))
	if !errors.Is(err, sdk.ErrDigestMismatch) {
		t.Fatalf("PutChecked with a wrong digest: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "a/b/d.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("object visible despite the digest mismatch")
	}
}

// The plugin process gets only the environment it is given: never the host's secrets.
func TestPluginEnvironment(t *testing.T) {
	t.Setenv("API_KEY", "host-secret-api-key")
	t.Setenv("JWT_SECRET", "host-secret-jwt")
	m, _ := newManager(t)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", m.pid(t)))
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(string(environ), "\x00")
	for _, v := range vars {
		if strings.HasPrefix(v, "API_KEY=") || strings.HasPrefix(v, "JWT_SECRET=") || strings.Contains(v, "host-secret") {
			t.Fatalf("plugin environment carries a host secret: %q", v)
		}
	}
	if !strings.Contains(string(environ), "PATH=") {
		t.Fatalf("plugin environment lacks PATH: %q", vars)
	}
}

// A killed plugin is noticed, reported, and started again on the next use.
func TestRestartAfterKill(t *testing.T) {
	m, _ := newManager(t)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := m.pid(t)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = m.Health(context.Background()); err == nil {
			break
		}
		if !errors.Is(err, sdk.ErrPluginExited) && !errors.Is(err, sdk.ErrUnavailable) {
			t.Fatalf("health of a killed plugin: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("plugin not back: %v", err)
	}
	if m.pid(t) == first || m.Restarts() != 1 {
		t.Fatalf("pid %d (was %d), restarts %d", m.pid(t), first, m.Restarts())
	}
	content := []byte("after restart")
	if _, err := m.Put(context.Background(), "x", bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatalf("put after restart: %v", err)
	}
}

func TestChecksumPin(t *testing.T) {
	data, err := os.ReadFile(pluginBin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	good, _ := newManager(t, func(o *Options) { o.SHA256 = hex.EncodeToString(sum[:]) })
	if err := good.Start(context.Background()); err != nil {
		t.Fatalf("pinned to the right checksum: %v", err)
	}
	sum[0] ^= 1
	bad, _ := newManager(t, func(o *Options) { o.SHA256 = hex.EncodeToString(sum[:]) })
	err = bad.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "PLUGIN_SHA256") {
		t.Fatalf("tampered checksum accepted: %v", err)
	}
}

func TestNotAPlugin(t *testing.T) {
	script := filepath.Join(t.TempDir(), "chunked-uploader-plugin-fake")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(t, func(o *Options) { o.Path = script; o.StartTimeout = 5 * time.Second })
	if err := m.Start(context.Background()); err == nil || !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("a non-plugin started: %v", err)
	}
}

func TestBadSettings(t *testing.T) {
	m, _ := newManager(t, func(o *Options) { o.Settings = map[string]string{"LOCAL_STORAGE_PATH": "relative/path"} })
	err := m.Start(context.Background())
	if err == nil || !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Fatalf("bad settings accepted: %v", err)
	}
}

func faultManager(t *testing.T, mode string, mod ...func(*Options)) *Manager {
	t.Helper()
	m, _ := newManager(t, append([]func(*Options){func(o *Options) {
		o.Name, o.Path = "fault", faultBin
		o.Settings = map[string]string{"FAULT_MODE": mode, "FAULT_ROOT": t.TempDir()}
	}}, mod...)...)
	return m
}

// TestErrorKinds: an error of each kind that a plugin process returns reaches the host as
// that sentinel and no other, through go-plugin's connection to a real process.
func TestErrorKinds(t *testing.T) {
	// The expected table is written out here, not taken from sdk.WireErrors (which the
	// fault plugin uses): a kind missing there must fail this test.
	kinds := map[string]error{
		"NOT_FOUND":            sdk.ErrNotFound,
		"INVALID_KEY":          sdk.ErrInvalidKey,
		"INVALID_CONFIG":       sdk.ErrInvalidConfig,
		"SIZE_MISMATCH":        sdk.ErrSizeMismatch,
		"DIGEST_MISMATCH":      sdk.ErrDigestMismatch,
		"UNAVAILABLE":          sdk.ErrUnavailable,
		"INSUFFICIENT_STORAGE": sdk.ErrInsufficientStorage,
		"PERMISSION":           sdk.ErrPermission,
		"NOT_SUPPORTED":        sdk.ErrNotSupported,
		"NOT_CONFIGURED":       sdk.ErrNotConfigured,
		"STALE_RECEIPT":        sdk.ErrStaleReceipt,
	}
	m := faultManager(t, "")
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, kind := range kinds {
		_, err := m.Stat(context.Background(), "kind/"+name)
		if err == nil {
			t.Errorf("%s: Stat succeeded", name)
			continue
		}
		if !errors.Is(fmt.Errorf("deliver: %w", err), kind) {
			t.Errorf("%s: %q does not wrap %v", name, err, kind)
		}
		for other, o := range kinds {
			if o != kind && errors.Is(err, o) {
				t.Errorf("%s: %q also wraps %s", name, err, other)
			}
		}
		if errors.Is(err, sdk.ErrPluginExited) {
			t.Errorf("%s: %q says the plugin exited", name, err)
		}
	}
}

// zeros yields n zero bytes.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), z.n)]
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// A plugin that stops reading mid-delivery is killed after the stall timeout; the call
// fails as retryable and the next call gets a fresh process.
func TestHungPutIsKilled(t *testing.T) {
	m := faultManager(t, "hang-put", func(o *Options) { o.StallTimeout = time.Second })
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := m.pid(t)
	start := time.Now()
	_, err := m.Put(context.Background(), "big", &zeros{64 << 20}, 64<<20)
	if !errors.Is(err, sdk.ErrPluginExited) {
		t.Fatalf("Put to a hung plugin: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %s", d)
	}
	waitGone(t, first)
	if err := m.Health(context.Background()); err != nil {
		t.Fatalf("health after restart: %v", err)
	}
	if m.pid(t) == first || m.Restarts() != 1 {
		t.Fatalf("not restarted: pid %d (was %d), restarts %d", m.pid(t), first, m.Restarts())
	}
}

// A health probe that hangs fails Health within HealthTimeout but does not kill a plugin
// that still answers its liveness check.
func TestHungHealthIsNotKilled(t *testing.T) {
	m := faultManager(t, "hang-health", func(o *Options) {
		o.HealthTimeout = 300 * time.Millisecond
		o.LivenessTimeout = 200 * time.Millisecond
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := m.pid(t)
	for range 3 {
		err := m.Health(context.Background())
		if !errors.Is(err, sdk.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("health of a plugin whose probe hangs: %v", err)
		}
	}
	// Several liveness periods later the plugin still runs and serves.
	time.Sleep(time.Second)
	if m.pid(t) != first || m.Restarts() != 0 {
		t.Fatalf("plugin replaced: pid %d (was %d), restarts %d", m.pid(t), first, m.Restarts())
	}
	content := []byte("still served")
	if _, err := m.Put(context.Background(), "x", bytes.NewReader(content), int64(len(content))); err != nil {
		t.Fatalf("put to the plugin whose health probe hangs: %v", err)
	}
}

// A frozen plugin (SIGSTOP) is killed by the liveness check; a Put in flight fails as
// retryable, Health fails within its bound meanwhile, and the next call gets a new process.
func TestFrozenPluginIsKilled(t *testing.T) {
	m, _ := newManager(t, func(o *Options) {
		o.HealthTimeout = 500 * time.Millisecond
		o.LivenessTimeout = 500 * time.Millisecond
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := m.pid(t)
	if err := syscall.Kill(first, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(first, syscall.SIGKILL) })
	// SIGSTOP takes effect asynchronously: until every thread stopped, the plugin can
	// still answer.
	for deadline := time.Now().Add(5 * time.Second); !plugintest.Stopped(first); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d not stopped 5 s after SIGSTOP", first)
		}
	}
	put := make(chan error, 1)
	go func() {
		_, err := m.Put(context.Background(), "frozen", &zeros{64 << 20}, 64<<20)
		put <- err
	}()
	if err := m.Health(context.Background()); err == nil {
		t.Fatal("health of a frozen plugin succeeded")
	}
	select {
	case err := <-put:
		if !errors.Is(err, sdk.ErrPluginExited) {
			t.Fatalf("Put to a frozen plugin: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Put to a frozen plugin still blocked 30 s later")
	}
	waitGone(t, first)
	if err := m.Health(context.Background()); err != nil {
		t.Fatalf("health after the frozen plugin was replaced: %v", err)
	}
	if m.pid(t) == first || m.Restarts() != 1 {
		t.Fatalf("not restarted: pid %d (was %d), restarts %d", m.pid(t), first, m.Restarts())
	}
}

// Concurrent Health calls share one probe, and a result is reused for HealthCacheTTL as
// long as the process that gave it runs.
func TestHealthSharedAndCached(t *testing.T) {
	log := filepath.Join(t.TempDir(), "probes")
	m := faultManager(t, "", func(o *Options) {
		o.Settings["FAULT_HEALTH_LOG"] = log
		o.HealthCacheTTL = time.Hour
	})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 50)
	for range cap(errs) {
		go func() { errs <- m.Health(context.Background()) }()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := probes(t, log); n != 1 {
		t.Fatalf("50 Health calls made %d probes, want 1", n)
	}
	// A new process is probed anew.
	first := m.pid(t)
	syscall.Kill(first, syscall.SIGKILL)
	waitGone(t, first)
	deadline := time.Now().Add(15 * time.Second)
	for m.Health(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("plugin not back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := probes(t, log); n != 2 {
		t.Fatalf("%d probes after a restart, want 2", n)
	}
}

// A call that fails because the backend is down drops a cached healthy answer.
func TestHealthCacheForgetsOnBackendError(t *testing.T) {
	log := filepath.Join(t.TempDir(), "probes")
	control := t.TempDir()
	m := faultManager(t, "", func(o *Options) {
		o.Settings["FAULT_HEALTH_LOG"] = log
		o.Settings["FAULT_CONTROL"] = control
		o.HealthCacheTTL = time.Hour
	})
	for range 2 {
		if err := m.Health(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := probes(t, log); n != 1 {
		t.Fatalf("%d probes, want 1", n)
	}
	if err := os.WriteFile(filepath.Join(control, "fail-put"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Put(context.Background(), "k", bytes.NewReader([]byte("x")), 1); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("Put with fail-put: %v", err)
	}
	if err := m.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := probes(t, log); n != 2 {
		t.Fatalf("%d probes after a failed Put, want 2 (the cached answer dropped)", n)
	}
}

func probes(t *testing.T, log string) int {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// A plugin that dies mid-delivery: the Put fails as retryable, nothing is left visible.
func TestCrashMidPut(t *testing.T) {
	m := faultManager(t, "crash-put")
	_, err := m.Put(context.Background(), "k", &zeros{8 << 20}, 8<<20)
	if !errors.Is(err, sdk.ErrPluginExited) {
		t.Fatalf("Put to a crashing plugin: %v", err)
	}
	if _, err := m.Stat(context.Background(), "k"); !errors.Is(err, sdk.ErrNotFound) {
		t.Fatalf("object after a crash mid-put: %v", err)
	}
	if m.Restarts() != 1 {
		t.Fatalf("restarts = %d", m.Restarts())
	}
}

// A plugin that dies while being configured is reported, not waited for.
func TestCrashAtConfigure(t *testing.T) {
	m := faultManager(t, "crash-configure", func(o *Options) { o.StartTimeout = 5 * time.Second })
	start := time.Now()
	err := m.Start(context.Background())
	if err == nil {
		t.Fatal("a plugin that crashes at start started")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %s to notice", d)
	}
}

// waitGone waits until process pid is gone, or a zombie whose threads have all exited (a
// killed process's main thread is a zombie while its other threads still exit, and until
// they have, its parent does not see it exit).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil || (strings.Contains(string(st), ") Z") && len(tasks) <= 1) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
