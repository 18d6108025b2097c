package plugintest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func TestPattern(t *testing.T) {
	a := plugintest.Pattern(100)
	if len(a) != 100 || !bytes.Equal(a, plugintest.Pattern(100)) || bytes.Equal(a[:32], a[32:64]) {
		t.Errorf("Pattern(100) = %x: want 100 bytes, the same each time, blocks differing", a)
	}
}

func TestBlockReader(t *testing.T) {
	r := plugintest.NewBlockReader(3<<20 + 5)
	b, err := io.ReadAll(r)
	if err != nil || len(b) != 3<<20+5 || !bytes.Equal(b[:1<<20], b[1<<20:2<<20]) || !bytes.Equal(b[3<<20:], r.Block[:5]) {
		t.Errorf("BlockReader yielded %d bytes, %v; want 3 MiB + 5 of its block repeated", len(b), err)
	}
}

// health fails with err, whatever its settings say.
type health struct{ err error }

func (h health) Health(context.Context) error { return h.err }

func TestRunHealthCases(t *testing.T) {
	base := sdk.Config{"X_MODE": "ok"}
	open := func(t *testing.T, c sdk.Config) sdk.HealthChecker {
		if c["X_MODE"] == "ok" {
			return health{}
		}
		return health{fmt.Errorf("%w: mode %s", sdk.ErrPermission, c["X_MODE"])}
	}
	plugintest.RunHealthCases(t, base, open, map[string]plugintest.HealthCase{
		"OK":     {Change: func(sdk.Config) {}},
		"Denied": {Change: func(c sdk.Config) { c["X_MODE"] = "denied" }, Want: sdk.ErrPermission, Text: "mode denied"},
	})
	if base["X_MODE"] != "ok" {
		t.Error("RunHealthCases changed the base settings")
	}
}

func TestCancelAfter(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := plugintest.CancelAfter(bytes.NewReader(make([]byte, 100)), 10, cancel)
	b := make([]byte, 64)
	if n, _ := r.Read(b); n != 10 || ctx.Err() != nil {
		t.Fatalf("first read: %d bytes, ctx %v; want 10 and not cancelled", n, ctx.Err())
	}
	if n, _ := r.Read(b); n != 1 || ctx.Err() == nil {
		t.Errorf("second read: %d bytes, ctx %v; want 1 and cancelled", n, ctx.Err())
	}
}

type parsed struct{ A string }

func TestRunConfigCases(t *testing.T) {
	parse := func(c sdk.Config) (parsed, error) {
		if c["A"] == "" {
			return parsed{}, fmt.Errorf("%w: A is required", sdk.ErrInvalidConfig)
		}
		return parsed{A: c["A"]}, nil
	}
	plugintest.RunConfigCases(t, parse, map[string]plugintest.ConfigCase[parsed]{
		"Want":  {In: sdk.Config{"A": "x"}, Want: parsed{A: "x"}},
		"Taken": {In: sdk.Config{"A": "y"}},
		"Check": {In: sdk.Config{"A": "z"}, Check: func(t *testing.T, got parsed) {
			if got.A != "z" {
				t.Errorf("got %+v", got)
			}
		}},
		"Bad": {In: sdk.Config{}, Bad: true},
	})
}

func TestStopped(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	if plugintest.Stopped(pid) {
		t.Fatal("a running process reads as stopped")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !plugintest.Stopped(pid) {
		if time.Now().After(deadline) {
			t.Fatal("not stopped 5 s after SIGSTOP")
		}
		time.Sleep(time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGCONT)
	for plugintest.Stopped(pid) {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("still stopped after SIGCONT")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if plugintest.Stopped(pid) {
		t.Error("a process that is gone reads as stopped")
	}
}
