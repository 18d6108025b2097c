// Package pluginmgr runs the storage plugin process and presents it as an sdk.Storage.
//
// The plugin is started with go-plugin over gRPC, with an environment of its own (the
// host's secrets never reach it) and its settings sent through Configure. If the process
// dies, calls in flight fail with an error wrapping sdk.ErrPluginExited, the host keeps
// serving, and the next call starts a fresh process (at most once per RestartBackoff).
//
// No lock is held across a call to the plugin: a plugin that stops answering (frozen,
// wedged, deadlocked) can delay only the calls made to it. A liveness check (the gRPC health
// service go-plugin serves in every plugin process, not the backend's own probe) runs in the
// background; a process that does not answer it within LivenessTimeout is killed with
// SIGKILL, which needs no cooperation from it, and the calls it held fail.
package pluginmgr

import (
	"context"
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
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// ErrRefused marks a plugin that can never start as configured: its checksum differs from
// PLUGIN_SHA256, its file may be changed by other users, or it speaks another protocol
// version. Restarting does not help.
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
	// StagingDir, if set, is the host's staging directory, offered to the plugin for
	// staged reads at every start (pluginhost.Remote.ConfigureWithStaging): a part passed to
	// PutPart as a *pluginhost.StagedPart is then read by the plugin from its file. Such a
	// call shows no progress to the stall watch until it returns, so it must end within
	// StallTimeout.
	StagingDir string
	// PartFiles lets the host write parts into the plugin's part files itself when the
	// plugin offers it (sdk.PartFiles): see Manager.PartFiles.
	PartFiles bool
	// HealthTimeout bounds Health: a backend probe that takes longer makes Health fail with
	// an error wrapping sdk.ErrUnavailable and context.DeadlineExceeded, and the plugin is
	// left running (whether it is alive is the liveness check's business). Default 10 s.
	HealthTimeout time.Duration
	// HealthCacheTTL is how long a Health result stays valid for the process that gave it.
	// 0: not cached, but concurrent calls still share one probe.
	HealthCacheTTL time.Duration
	// LivenessTimeout: a plugin process that does not answer a liveness ping within this is
	// killed. It is pinged every LivenessTimeout/2. Default 10 s.
	LivenessTimeout time.Duration
}

// killWait bounds each step of stopping a process: the graceful shutdown go-plugin asks
// for, and the wait for the process to be reaped after SIGKILL.
const killWait = 5 * time.Second

// Manager owns the plugin process. It is safe for concurrent use.
type Manager struct {
	opt  Options
	log  hclog.Logger
	base context.Context // cancelled by Close
	stop context.CancelFunc

	mu        sync.Mutex
	cur       *process   // the running process, nil when there is none
	starting  *startCall // the start in progress, nil when there is none
	lastStart time.Time  // when the last start began (or will begin)
	restarts  int
	closed    bool
	bg        sync.WaitGroup // starts in progress

	health healthCache

	info atomic.Pointer[pluginhost.PluginInfo] // what the plugin said when last configured

	sweep sync.Once // of the socket directories of killed hosts, at the first launch
}

// startCall is one start of the plugin, shared by every caller that needs a process
// while it runs.
type startCall struct {
	done chan struct{}
	p    *process // valid after done is closed
	err  error
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
	if opt.LivenessTimeout == 0 {
		opt.LivenessTimeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	base, stop := context.WithCancel(context.Background())
	return &Manager{opt: opt, log: opt.Logger, base: base, stop: stop}
}

// Name returns the backend name.
func (m *Manager) Name() string { return m.opt.Name }

// Start starts and configures the plugin now, so that start-up errors surface at once.
func (m *Manager) Start(ctx context.Context) error {
	_, err := m.process(ctx)
	return err
}

// Restarts returns how many times the plugin was started after the first time.
func (m *Manager) Restarts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.restarts
}

// get returns a live, configured plugin, starting one if there is none or it exited.
func (m *Manager) get(ctx context.Context) (pluginhost.Remote, error) {
	remote, _, err := m.current(ctx)
	return remote, err
}

// current is get that also returns the process serving remote, so that a caller can
// kill that very process.
func (m *Manager) current(ctx context.Context) (pluginhost.Remote, *plugin.Client, error) {
	p, err := m.process(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p.remote, p.client, nil
}

// process returns the running process, or waits (as long as ctx allows) for one to start.
// The start itself runs detached from ctx, bounded by StartTimeout, and is shared by every
// caller that arrives while it runs.
func (m *Manager) process(ctx context.Context) (*process, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: shutting down", sdk.ErrPluginExited)
	}
	if p := m.cur; p != nil {
		if !p.dead() {
			m.mu.Unlock()
			return p, nil
		}
		m.cur = nil
		m.restarts++
		m.log.Warn("storage plugin exited; restarting it", "plugin", m.opt.Path, "pid", p.pid)
		go p.stop(m.log) // reaps go-plugin's side; the process is gone already
	}
	sc := m.starting
	if sc == nil {
		sc = &startCall{done: make(chan struct{})}
		m.starting = sc
		var wait time.Duration
		if !m.lastStart.IsZero() {
			wait = max(0, m.opt.RestartBackoff-time.Since(m.lastStart))
		}
		m.lastStart = time.Now().Add(wait)
		m.bg.Add(1)
		go m.runStart(sc, wait)
	}
	m.mu.Unlock()
	select {
	case <-sc.done:
		return sc.p, sc.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the storage plugin to start: %w", ctx.Err())
	}
}

// runStart starts a process after wait and publishes it (or the error) to sc.
func (m *Manager) runStart(sc *startCall, wait time.Duration) {
	defer m.bg.Done()
	var p *process
	var err error
	select {
	case <-time.After(wait):
		p, err = m.start(m.base)
	case <-m.base.Done():
		err = fmt.Errorf("%w: shutting down", sdk.ErrPluginExited)
	}
	m.mu.Lock()
	m.starting = nil
	if err == nil && m.closed {
		err = fmt.Errorf("%w: shutting down", sdk.ErrPluginExited)
		defer p.stop(m.log)
		p = nil
	}
	if err == nil {
		m.cur = p
		go m.watch(p)
	}
	sc.p, sc.err = p, err
	m.mu.Unlock()
	close(sc.done)
}

// kill stops client if it is still the current process (it does not answer): SIGKILL, so
// that a frozen process goes too, and calls in flight to it fail. The next call starts a
// new one. kill returns once the process is gone, or after a bounded wait.
func (m *Manager) kill(client *plugin.Client, why string) {
	m.mu.Lock()
	p := m.cur
	if client == nil || p == nil || p.client != client {
		m.mu.Unlock()
		return
	}
	m.cur = nil
	m.restarts++
	m.mu.Unlock()
	m.log.Error("killing the storage plugin: "+why, "plugin", m.opt.Path, "pid", p.pid)
	p.kill(m.log)
}

func (m *Manager) start(ctx context.Context) (*process, error) {
	p, err := m.launch()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, m.opt.StartTimeout)
	defer cancel()
	var info pluginhost.PluginInfo
	if m.opt.StagingDir != "" {
		info, err = p.remote.ConfigureWithStaging(cctx, m.opt.Settings, m.opt.StagingDir)
	} else {
		info, err = p.remote.Configure(cctx, m.opt.Settings)
	}
	if err != nil {
		p.kill(m.log)
		return nil, fmt.Errorf("storage plugin %s: %w", m.opt.Name, err)
	}
	m.info.Store(&info)
	m.log.Info("storage plugin started", "backend", m.opt.Name, "served_name", info.Name, "part_wise", info.Parts != nil, "staged_reads", info.StagedReads,
		"part_files", info.PartFiles && m.opt.PartFiles,
		"pid", p.pid, "protocol_version", p.client.NegotiatedVersion())
	return p, nil
}

// launch starts the plugin process and connects to it, without configuring it. The binary
// is opened once: its permissions and its digest (PLUGIN_SHA256) are checked on the open
// file, and that very file is what runs (see pinnedExecutable).
func (m *Manager) launch() (*process, error) {
	// The plugin listens on a Unix socket in a directory only this user can enter: that,
	// not TLS, is what keeps other local users off it (TLS would add two copies and
	// AES-GCM to every byte delivered). The directory goes when the process goes.
	m.sweep.Do(func() {
		// Directories that killed hosts left behind (see sweepSocketDirs; the grace is for
		// those of older versions, whose names have no pid).
		go sweepSocketDirs(m.log, max(2*m.opt.StartTimeout, 10*time.Minute))
	})
	if err := checkTempDir(os.TempDir()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	sockDir, err := makeSocketDir()
	if err != nil {
		return nil, fmt.Errorf("plugin socket directory in TMPDIR %s: %w", os.TempDir(), err)
	}
	exe, inherit, release, err := pinnedExecutable(m.opt.Path, m.opt.SHA256, sockDir)
	if err != nil {
		os.RemoveAll(sockDir)
		return nil, err
	}
	defer release() // the process has started (or failed to) when launch returns
	cmd := exec.Command(exe)
	cmd.Args[0] = m.opt.Path // what ps shows
	if inherit != nil {
		cmd.ExtraFiles = []*os.File{inherit}
	}
	cmd.Env = append(append([]string(nil), m.opt.Env...), plugin.EnvUnixSocketDir+"="+sockDir)
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          pluginhost.PluginSet(),
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
	client := plugin.NewClient(cfg)
	p := &process{client: client, cmd: cmd, sockDir: sockDir, gone: make(chan struct{})}
	fail := func(err error) (*process, error) {
		p.kill(m.log)
		return nil, err
	}
	rpc, err := client.Client()
	if cmd.Process != nil {
		p.pid = cmd.Process.Pid
	}
	if err != nil {
		// The one string match on go-plugin's text, which go-plugin forces: a refused
		// protocol version is only a fmt.Errorf in its handshake (client.go,
		// checkProtoVersion), with no error value or type to test, and the operator must
		// be told which version the plugin speaks.
		if _, v, ok := strings.Cut(err.Error(), "incompatible API version with plugin. Plugin version: "); ok {
			if i := strings.IndexByte(v, ','); i > 0 {
				v = v[:i]
			}
			return fail(fmt.Errorf("%w: %s speaks storage protocol version %s, this server speaks %d: build the plugin against this server's sdk",
				ErrRefused, m.opt.Path, v, sdk.ProtocolVersion))
		}
		return fail(fmt.Errorf("%w: start %s: %v", sdk.ErrUnavailable, m.opt.Path, err))
	}
	if g, ok := rpc.(*plugin.GRPCClient); ok {
		p.conn = g.Conn
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return fail(fmt.Errorf("%w: %s does not serve the storage protocol: %v", sdk.ErrUnavailable, m.opt.Path, err))
	}
	remote, ok := raw.(pluginhost.Remote)
	if !ok {
		return fail(fmt.Errorf("%w: %s dispensed %T", sdk.ErrUnavailable, m.opt.Path, raw))
	}
	p.remote = remote
	return p, nil
}

// exited converts an error from a call into one wrapping sdk.ErrPluginExited when the
// plugin process died (or was killed) during the call. An error that says the backend or
// the plugin cannot be used also drops the cached health answer: it is newer news.
func (m *Manager) exited(err error) error {
	if err == nil {
		return nil
	}
	defer func() {
		if backendDown(err) {
			m.health.forget()
		}
	}()
	dead := func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.cur == nil || m.cur.dead()
	}
	isDead := dead()
	if !isDead && errors.Is(err, sdk.ErrUnavailable) {
		// The connection may drop a moment before the process is reaped.
		time.Sleep(50 * time.Millisecond)
		isDead = dead()
	}
	if isDead && !errors.Is(err, sdk.ErrPluginExited) {
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

// Close stops the plugin process: it asks it to exit and kills it when it has not within
// a bounded time. Close does not wait for a start in progress for longer than that either.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	p := m.cur
	m.cur = nil
	m.mu.Unlock()
	m.stop()
	if p != nil {
		p.stop(m.log)
	}
	starts := make(chan struct{})
	go func() { m.bg.Wait(); close(starts) }()
	select {
	case <-starts:
	case <-time.After(killWait):
		m.log.Warn("a start of the storage plugin was still running at shutdown", "plugin", m.opt.Path)
	}
}
