package pluginmgr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// healthCache holds the last finished health probe and the one in flight.
type healthCache struct {
	mu     sync.Mutex
	last   *probe // nil until a probe finished
	flight *probe // nil when none runs
}

// probe is one health check of the backend, shared by every Health call that arrives while
// it runs and, for HealthCacheTTL, by those after it.
type probe struct {
	done chan struct{}
	// Valid after done is closed:
	err  error
	at   time.Time
	proc *process // the process probed; nil when none could be started
}

// Health checks the plugin and its backend (the plugin's own probe, which for the shipped
// backends writes and removes a small object). It answers from the last probe when that
// is younger than HealthCacheTTL, was made of the process still running, and no call
// failed since with an error that says the backend is down; otherwise it
// joins the probe in flight or starts one. It returns within HealthTimeout whatever the
// plugin does: a probe that takes longer fails Health with an error wrapping
// sdk.ErrUnavailable and context.DeadlineExceeded, and keeps running in the background for
// the callers after. A slow probe never kills the plugin: the liveness check does that,
// for a process that stops answering at all.
func (m *Manager) Health(ctx context.Context) error {
	m.health.mu.Lock()
	if l := m.health.last; l != nil && time.Since(l.at) < m.opt.HealthCacheTTL && m.stillCurrent(l.proc) {
		m.health.mu.Unlock()
		return l.err
	}
	p := m.health.flight
	if p == nil {
		p = &probe{done: make(chan struct{})}
		m.health.flight = p
		go m.runProbe(p)
	}
	m.health.mu.Unlock()
	bound := time.NewTimer(m.opt.HealthTimeout)
	defer bound.Stop()
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	case <-bound.C:
		return fmt.Errorf("%w: %w: the storage plugin did not answer a health check within %s",
			sdk.ErrUnavailable, context.DeadlineExceeded, m.opt.HealthTimeout)
	}
}

// forget drops the cached answer.
func (c *healthCache) forget() {
	c.mu.Lock()
	c.last = nil
	c.mu.Unlock()
}

// backendDown reports whether err, from a call to the plugin, says that the backend or the
// plugin cannot be used (rather than something about the call's own object or data).
func backendDown(err error) bool {
	for _, e := range []error{sdk.ErrUnavailable, sdk.ErrPluginExited, sdk.ErrPermission,
		sdk.ErrInsufficientStorage, sdk.ErrNotConfigured, sdk.ErrInvalidConfig, context.DeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// stillCurrent reports whether the probed process p is still the running one (for a probe
// that found no process: whether there still is none).
func (m *Manager) stillCurrent(p *process) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cur == p && (p == nil || !p.dead())
}

// runProbe runs p: it gets the process (starting one if needed, bounded by StartTimeout)
// and asks its backend, bounded by HealthTimeout.
func (m *Manager) runProbe(p *probe) {
	proc, err := m.process(m.base)
	if err == nil {
		ctx, cancel := context.WithTimeout(m.base, m.opt.HealthTimeout)
		err = proc.remote.Health(ctx)
		// The plugin's server may end the call at the deadline a moment before ctx says so.
		timedOut := errors.Is(err, context.DeadlineExceeded) && m.base.Err() == nil
		cancel()
		if timedOut {
			err = fmt.Errorf("%w: %w: the storage backend did not answer a health check within %s",
				sdk.ErrUnavailable, context.DeadlineExceeded, m.opt.HealthTimeout)
		} else {
			err = m.exited(err)
		}
	}
	p.err, p.at, p.proc = err, time.Now(), proc
	m.health.mu.Lock()
	m.health.last, m.health.flight = p, nil
	m.health.mu.Unlock()
	close(p.done)
}
