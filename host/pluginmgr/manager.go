// Package pluginmgr runs the storage plugin process and presents it as an sdk.Storage.
//
// The plugin is started with go-plugin over gRPC, with an environment of its own (the
// host's secrets never reach it) and its settings sent through Configure. If the process
// dies, calls in flight fail with an error wrapping sdk.ErrPluginExited, the host keeps
// serving, and the next call starts a fresh process (at most once per RestartBackoff).
package pluginmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// ErrRefused marks a plugin that can never start as configured: its checksum differs from
// PLUGIN_SHA256, or it speaks another protocol version. Restarting does not help.
var ErrRefused = errors.New("storage plugin refused")

// Options configure a Manager.
type Options struct {
	Name     string            // backend name, for logs and /health
	Path     string            // plugin executable
	SHA256   string            // hex digest the executable must have; "" = not checked
	Settings map[string]string // sent through Configure
	Env      []string          // the plugin process's whole environment
	Logger   hclog.Logger

	// StartTimeout bounds starting the process and Configure. Default 30 s.
	StartTimeout time.Duration
	// RestartBackoff is the least time between two starts. Default 1 s.
	RestartBackoff time.Duration
	// StallTimeout: a Put that consumes no data for this long (including the wait for the
	// plugin to commit after the last byte) is abandoned and the plugin killed. Default 5 min.
	StallTimeout time.Duration
	// HealthTimeout: a health check that takes longer kills the plugin. Default 10 s.
	HealthTimeout time.Duration
}

// Manager owns the plugin process. It is safe for concurrent use.
type Manager struct {
	opt Options
	log hclog.Logger

	mu        sync.Mutex
	client    *plugin.Client
	remote    sdk.Remote
	sockDir   string // the running plugin's socket directory
	lastStart time.Time
	restarts  int
	closed    bool

	info atomic.Pointer[sdk.PluginInfo] // what the plugin said when last configured
}

var _ sdk.Storage = (*Manager)(nil)

// New returns a Manager; the process starts on Start or on first use.
func New(opt Options) *Manager {
	if opt.StartTimeout == 0 {
		opt.StartTimeout = 30 * time.Second
	}
	if opt.RestartBackoff == 0 {
		opt.RestartBackoff = time.Second
	}
	if opt.StallTimeout == 0 {
		opt.StallTimeout = 5 * time.Minute
	}
	if opt.HealthTimeout == 0 {
		opt.HealthTimeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	return &Manager{opt: opt, log: opt.Logger}
}

// Name returns the backend name.
func (m *Manager) Name() string { return m.opt.Name }

// Start starts and configures the plugin now, so that start-up errors surface at once.
func (m *Manager) Start(ctx context.Context) error {
	_, err := m.get(ctx)
	return err
}

// Restarts returns how many times the plugin was started after the first time.
func (m *Manager) Restarts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restarts
}

// get returns a live, configured plugin, starting one if there is none or it exited.
func (m *Manager) get(ctx context.Context) (sdk.Remote, error) {
	remote, _, err := m.current(ctx)
	return remote, err
}

// current is get that also returns the process serving remote, so that a caller can
// kill that very process.
func (m *Manager) current(ctx context.Context) (sdk.Remote, *plugin.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, fmt.Errorf("%w: shutting down", sdk.ErrPluginExited)
	}
	if m.client != nil && !m.client.Exited() {
		return m.remote, m.client, nil
	}
	if m.client != nil {
		m.log.Warn("storage plugin exited; restarting it", "plugin", m.opt.Path)
		m.stopLocked()
		m.restarts++
	}
	if wait := m.opt.RestartBackoff - time.Since(m.lastStart); !m.lastStart.IsZero() && wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	m.lastStart = time.Now()
	client, remote, sockDir, err := m.start(ctx)
	if err != nil {
		return nil, nil, err
	}
	m.client, m.remote, m.sockDir = client, remote, sockDir
	return remote, client, nil
}

// kill stops client if it is still the current process (it does not answer). The next
// call starts a new one.
func (m *Manager) kill(client *plugin.Client, why string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if client == nil || m.client != client {
		return
	}
	m.log.Error("killing the storage plugin: "+why, "plugin", m.opt.Path)
	m.stopLocked()
	m.restarts++
}

// stopLocked stops the current process and removes its socket directory.
func (m *Manager) stopLocked() {
	m.client.Kill()
	os.RemoveAll(m.sockDir)
	m.client, m.remote, m.sockDir = nil, nil, ""
}

func (m *Manager) start(ctx context.Context) (*plugin.Client, sdk.Remote, string, error) {
	// The plugin listens on a Unix socket in a directory only this user can enter: that,
	// not TLS, is what keeps other local users off it (TLS would add two copies and
	// AES-GCM to every byte delivered). The directory goes when the process goes.
	sockDir, err := os.MkdirTemp("", "chunked-uploader-plugin-")
	if err != nil {
		return nil, nil, "", fmt.Errorf("plugin socket directory: %w", err)
	}
	cmd := exec.Command(m.opt.Path)
	cmd.Env = append(append([]string(nil), m.opt.Env...), plugin.EnvUnixSocketDir+"="+sockDir)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          sdk.PluginSet(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           m.log.Named("plugin"),
		StartTimeout:     m.opt.StartTimeout,
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithWriteBufferSize(1 << 20),
			grpc.WithReadBufferSize(64 << 10),
		},
	}
	if m.opt.SHA256 != "" {
		sum, err := hex.DecodeString(m.opt.SHA256)
		if err != nil {
			os.RemoveAll(sockDir)
			return nil, nil, "", fmt.Errorf("plugin checksum: %w", err)
		}
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(cfg)
	fail := func(err error) (*plugin.Client, sdk.Remote, string, error) {
		client.Kill()
		os.RemoveAll(sockDir)
		return nil, nil, "", err
	}
	rpc, err := client.Client()
	if err != nil {
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return fail(fmt.Errorf("%w: %s: its SHA-256 (%s) does not match PLUGIN_SHA256 (%s)",
				ErrRefused, m.opt.Path, fileSHA256(m.opt.Path), m.opt.SHA256))
		}
		if _, v, ok := strings.Cut(err.Error(), "incompatible API version with plugin. Plugin version: "); ok {
			if i := strings.IndexByte(v, ','); i > 0 {
				v = v[:i]
			}
			return fail(fmt.Errorf("%w: %s speaks storage protocol version %s, this server speaks %d: build the plugin against this server's sdk",
				ErrRefused, m.opt.Path, v, sdk.ProtocolVersion))
		}
		return fail(fmt.Errorf("%w: start %s: %v", sdk.ErrUnavailable, m.opt.Path, err))
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return fail(fmt.Errorf("%w: %s does not serve the storage protocol: %v", sdk.ErrUnavailable, m.opt.Path, err))
	}
	remote, ok := raw.(sdk.Remote)
	if !ok {
		return fail(fmt.Errorf("%w: %s dispensed %T", sdk.ErrUnavailable, m.opt.Path, raw))
	}
	cctx, cancel := context.WithTimeout(ctx, m.opt.StartTimeout)
	defer cancel()
	info, err := remote.Configure(cctx, m.opt.Settings)
	if err != nil {
		return fail(fmt.Errorf("storage plugin %s: %w", m.opt.Name, err))
	}
	m.info.Store(&info)
	m.log.Info("storage plugin started", "backend", m.opt.Name, "served_name", info.Name, "part_wise", info.Parts != nil,
		"pid", client.ReattachConfig().Pid, "protocol_version", client.NegotiatedVersion())
	return client, remote, sockDir, nil
}

// exited converts an error from a call into one wrapping sdk.ErrPluginExited when the
// plugin process died during the call.
func (m *Manager) exited(err error) error {
	if err == nil {
		return nil
	}
	m.mu.Lock()
	dead := m.client == nil || m.client.Exited()
	m.mu.Unlock()
	if !dead && errors.Is(err, sdk.ErrUnavailable) {
		// The connection may drop a moment before the process is reaped.
		time.Sleep(50 * time.Millisecond)
		m.mu.Lock()
		dead = m.client == nil || m.client.Exited()
		m.mu.Unlock()
	}
	if dead && !errors.Is(err, sdk.ErrPluginExited) {
		return fmt.Errorf("%w: %w", sdk.ErrPluginExited, err)
	}
	return err
}

// Put implements sdk.Storage.
func (m *Manager) Put(ctx context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	return m.PutChecked(ctx, key, r, size, nil)
}

// PutChecked is Put that refuses to let the object become visible unless the content's
// SHA-256 equals want (when want is not nil). A plugin that stops consuming data for
// StallTimeout is killed, and the call fails with an error wrapping sdk.ErrPluginExited.
func (m *Manager) PutChecked(ctx context.Context, key string, r io.Reader, size int64, want []byte) (sdk.Object, error) {
	remote, client, err := m.current(ctx)
	if err != nil {
		return sdk.Object{}, err
	}
	var obj sdk.Object
	err = m.watchStall(ctx, client, r, func(ctx context.Context, r io.Reader) error {
		var err error
		obj, err = remote.PutChecked(ctx, key, r, size, want)
		return err
	})
	return obj, err
}

// progressReader remembers when data was last read from it.
type progressReader struct {
	r  io.Reader
	at atomic.Int64 // unix nanoseconds of the last read
}

func (p *progressReader) touch()          { p.at.Store(time.Now().UnixNano()) }
func (p *progressReader) last() time.Time { return time.Unix(0, p.at.Load()) }

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.touch()
	return n, err
}

// Stat implements sdk.Storage.
func (m *Manager) Stat(ctx context.Context, key string) (sdk.Object, error) {
	remote, err := m.get(ctx)
	if err != nil {
		return sdk.Object{}, err
	}
	obj, err := remote.Stat(ctx, key)
	return obj, m.exited(err)
}

// Delete implements sdk.Storage.
func (m *Manager) Delete(ctx context.Context, key string) error {
	remote, err := m.get(ctx)
	if err != nil {
		return err
	}
	return m.exited(remote.Delete(ctx, key))
}

// Health checks the plugin process and its backend. A dead plugin is restarted; one that
// does not answer within HealthTimeout is killed (and restarted on the next call).
func (m *Manager) Health(ctx context.Context) error {
	remote, client, err := m.current(ctx)
	if err != nil {
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, m.opt.HealthTimeout)
	defer cancel()
	err = remote.Health(hctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		m.kill(client, fmt.Sprintf("health check unanswered for %s", m.opt.HealthTimeout))
		return fmt.Errorf("%w: the plugin did not answer a health check in %s and was killed", sdk.ErrPluginExited, m.opt.HealthTimeout)
	}
	return m.exited(err)
}

// Close stops the plugin process.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.client != nil {
		m.stopLocked()
	}
}

// fileSHA256 returns the hex SHA-256 of the file at path, or "unreadable".
func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable"
	}
	return hex.EncodeToString(h.Sum(nil))
}
