package pluginmgr

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// process is one plugin process and the connection to it.
type process struct {
	client  *plugin.Client
	cmd     *exec.Cmd
	pid     int
	remote  pluginhost.Remote
	conn    *grpc.ClientConn // for liveness pings; nil if the protocol has none
	sockDir string

	once sync.Once
	gone chan struct{} // closed when the manager stops or kills the process
}

// dead reports whether the process has exited (or was reaped).
func (p *process) dead() bool { return p.client.Exited() || childExited(p.pid) }

// kill ends the process with SIGKILL, which needs no cooperation from it (a frozen or
// wedged process ignores a request to shut down), then lets go-plugin clean up its side.
// Each step is bounded: kill returns within about 2 x killWait even when the process
// cannot be reaped (stuck in the kernel).
func (p *process) kill(log hclog.Logger) {
	p.once.Do(func() {
		close(p.gone)
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill() // an error means it is gone already
		}
		p.cleanup(log)
	})
}

// stop asks the process to exit (go-plugin's graceful Kill: a Shutdown call, then its own
// SIGKILL 2 s later) and kills it when that has not finished within killWait: go-plugin
// waits for the Shutdown call without a deadline, so a frozen process would hold it for
// ever.
func (p *process) stop(log hclog.Logger) {
	p.once.Do(func() {
		close(p.gone)
		done := make(chan struct{})
		go func() {
			p.client.Kill()
			close(done)
		}()
		select {
		case <-done:
			os.RemoveAll(p.sockDir)
			return
		case <-time.After(killWait):
		}
		log.Warn("the storage plugin did not stop within the shutdown bound; killing it", "pid", p.pid, "bound", killWait.String())
		if p.cmd.Process != nil {
			_ = p.cmd.Process.Kill()
		}
		select {
		case <-done:
		case <-time.After(killWait):
			log.Error("the storage plugin was sent SIGKILL but is still not reaped", "pid", p.pid)
		}
		os.RemoveAll(p.sockDir)
	})
}

// cleanup runs go-plugin's Kill (which, once the process is gone, only releases the
// connection and the log readers), bounded by killWait, and removes the socket directory.
func (p *process) cleanup(log hclog.Logger) {
	done := make(chan struct{})
	go func() {
		p.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(killWait):
		log.Error("the storage plugin was sent SIGKILL but is still not reaped", "pid", p.pid)
	}
	os.RemoveAll(p.sockDir)
}

// ping is the liveness check: the gRPC health service that go-plugin serves in the plugin
// process itself. It tells a process that answers from one that does not, and never
// touches the backend. A plugin (not built with go-plugin) that answers without serving
// the health service is alive too.
func (p *process) ping(ctx context.Context) error {
	if p.conn == nil {
		return nil
	}
	resp, err := grpc_health_v1.NewHealthClient(p.conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
	if c := status.Code(err); c == codes.Unimplemented || c == codes.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if s := resp.GetStatus(); s != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("the plugin reports %s", s)
	}
	return nil
}

// watch pings p every LivenessTimeout/2 while it is the current process, and kills it
// when a ping is not answered within LivenessTimeout.
func (m *Manager) watch(p *process) {
	interval := max(m.opt.LivenessTimeout/2, 10*time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.gone:
			return
		case <-m.base.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(m.base, m.opt.LivenessTimeout)
		start := time.Now()
		err := p.ping(ctx)
		cancel()
		if err == nil {
			continue
		}
		if m.base.Err() != nil {
			return
		}
		// A process that died by itself drops the connection a moment before it is
		// reaped: that is an exit (the next call restarts it), not a hang.
		deadline := time.Now().Add(time.Second)
		for !p.dead() && time.Now().Before(deadline) && time.Since(start) < m.opt.LivenessTimeout {
			time.Sleep(20 * time.Millisecond)
		}
		if p.dead() {
			return
		}
		m.kill(p.client, fmt.Sprintf("it did not answer a liveness check within %s (%v)", m.opt.LivenessTimeout, err))
		return
	}
}
