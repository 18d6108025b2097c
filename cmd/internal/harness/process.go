package harness

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Process is a started program (a host, or a script that execs one) with its output in
// files.
type Process struct {
	Cmd        *exec.Cmd
	StdoutPath string
	StderrPath string // the same file as StdoutPath for a host the Host type started
	// Base is http://127.0.0.1:<SERVER_PORT> when the environment had SERVER_PORT.
	Base string
	// Exited is closed when the process has exited; WaitErr is valid after that.
	Exited  chan struct{}
	WaitErr error
}

// StartProcess runs exe args in dir with only PATH, HOME=dir, TMPDIR and env in its
// environment (nothing leaks in from the caller's), in its own process group (so that a
// program that ignores SIGTERM can be killed with its children), with stdout and stderr
// written to the given files, which may be one. It is for programs (benchmarks) as well as
// tests: nothing stops the process for the caller.
func StartProcess(exe string, args []string, dir string, env map[string]string, stdoutPath, stderrPath string) (*Process, error) {
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + os.TempDir()}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &Process{Cmd: cmd, StdoutPath: stdoutPath, StderrPath: stderrPath, Exited: make(chan struct{})}
	if port := env["SERVER_PORT"]; port != "" {
		p.Base = "http://127.0.0.1:" + port
	}
	stdout, err := os.Create(stdoutPath)
	if err != nil {
		return nil, err
	}
	stderr := stdout
	if stderrPath != stdoutPath {
		if stderr, err = os.Create(stderrPath); err != nil {
			stdout.Close()
			return nil, err
		}
	}
	closeAll := func() {
		stdout.Close()
		if stderr != stdout {
			stderr.Close()
		}
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, err
	}
	go func() {
		p.WaitErr = cmd.Wait()
		closeAll()
		close(p.Exited)
	}()
	return p, nil
}

// Exec starts exe args in dir like a host (see StartProcess) with stdout and stderr in
// separate files in logDir. It is stopped at cleanup (SIGTERM, then its process group is
// killed after DrainTimeout); its output is logged if the test failed.
func Exec(tb testing.TB, exe string, args []string, dir, logDir string, env map[string]string) *Process {
	tb.Helper()
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	p, err := StartProcess(exe, args, dir, env,
		filepath.Join(logDir, "stdout-"+stamp+".log"), filepath.Join(logDir, "stderr-"+stamp+".log"))
	if err != nil {
		tb.Fatalf("start %s: %v", exe, err)
	}
	tb.Cleanup(func() {
		p.Terminate(tb, DrainTimeout)
		if tb.Failed() {
			tb.Logf("output of %s %v:\n--- stdout\n%s\n--- stderr\n%s", exe, args, p.Stdout(), p.Stderr())
		}
	})
	return p
}

// PID is the process id.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.Exited:
		return false
	default:
		return true
	}
}

// ExitCode is the process's exit status (-1 when killed by a signal).
func (p *Process) ExitCode() int { return p.Cmd.ProcessState.ExitCode() }

// Stdout returns the last 64 KiB of the standard output.
func (p *Process) Stdout() string { return Tail(p.StdoutPath) }

// Stderr returns the last 64 KiB of the standard error.
func (p *Process) Stderr() string { return Tail(p.StderrPath) }

// WaitHealthy waits until GET Base/health answers 200, failing the test after 30 s or when
// the process exits first.
func (p *Process) WaitHealthy(tb testing.TB) {
	tb.Helper()
	if err := WaitHealthy(p.Base, p.Exited, 30*time.Second); err != nil {
		tb.Fatalf("%v (%v)\nstderr:\n%s", err, p.WaitErr, p.Stderr())
	}
}

// WaitExit waits up to timeout for the process to exit by itself and returns its exit code.
func (p *Process) WaitExit(tb testing.TB, timeout time.Duration) int {
	tb.Helper()
	select {
	case <-p.Exited:
	case <-time.After(timeout):
		tb.Fatalf("the process did not exit within %v\nstderr:\n%s", timeout, p.Stderr())
	}
	var ee *exec.ExitError
	switch {
	case p.WaitErr == nil:
		return 0
	case errors.As(p.WaitErr, &ee):
		return ee.ExitCode()
	}
	tb.Fatalf("wait: %v", p.WaitErr)
	return -1
}

// Stop sends SIGTERM and waits up to timeout for the process to exit; after that it kills
// the process group, waits for the process and reports that it had to.
func (p *Process) Stop(timeout time.Duration) (killed bool) {
	if !p.Running() {
		return false
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited:
		return false
	case <-time.After(timeout):
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
		<-p.Exited
		return true
	}
}

// Terminate is Stop that fails the test when the process had to be killed.
func (p *Process) Terminate(tb testing.TB, timeout time.Duration) {
	if p.Stop(timeout) {
		tb.Errorf("pid %d did not exit within %v of SIGTERM; killed its process group", p.PID(), timeout)
	}
}
