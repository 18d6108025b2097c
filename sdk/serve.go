package sdk

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"

	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

// Logger is the structured logger plugins get; it writes JSON to stderr, which the host
// reads and logs under the plugin's name.
type Logger = hclog.Logger

// ProtocolVersion is the storage protocol version. It changes only with a breaking change
// to proto/storage/v1; a host and plugin of different versions refuse each other with a
// clear error at start.
const ProtocolVersion = 1

// PluginName is the name the storage service is dispensed under.
const PluginName = "storage"

// Handshake is shared by the host and every plugin. The magic cookie only keeps a plugin
// binary from being run by hand by mistake; it is not a security feature.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "CHUNKED_UPLOADER_PLUGIN",
	MagicCookieValue: "storage-v1-6f1f2c0b4a3e",
}

// Plugin is the go-plugin glue of the plugin side: it serves the storage service. Serve
// uses it; a plugin that calls plugin.Serve itself (to set other go-plugin options) puts it
// in its plugin map under PluginName. The host side, which dispenses the service, is
// package sdk/pluginhost.
type Plugin struct {
	plugin.NetRPCUnsupportedPlugin

	Name     string
	Factory  Factory
	Validate func(Config) error // optional: checks settings for ConfigureRequest.validate_only
	Log      hclog.Logger
	// StagedReads lets the plugin read staged parts from the host's staging directory
	// itself, once it proved at Configure that it sees that directory (see WithStagedReads).
	StagedReads bool
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCServer implements plugin.GRPCPlugin.
func (p *Plugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Factory == nil {
		return fmt.Errorf("sdk: Plugin.Factory is nil")
	}
	log := p.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	storagev1.RegisterStorageServiceServer(s, &grpcServer{name: p.Name, factory: p.Factory, validate: p.Validate, log: log, stagedReads: p.StagedReads})
	return nil
}

// GRPCClient implements plugin.GRPCPlugin. It fails: a host dispenses the storage
// service with pluginhost.PluginSet.
func (p *Plugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("sdk: Plugin only serves; dispense the storage service with package pluginhost")
}

// Flow control of the plugin's gRPC server. Put streams the whole file to the plugin: with
// gRPC's defaults (a 64 KiB window grown by estimation, 32 KiB socket buffers) the transfer
// is bound by round trips, not by the machine. A fixed window lets the host run ahead by
// at most windowSize bytes, which is also the most a plugin buffers per connection.
const (
	windowSize    = 8 << 20
	ioBufferSize  = 1 << 20
	maxRecvMsgLen = CopyBufferSize + 1<<10 // one data chunk and its framing
	// maxUnaryLen is what the other requests may take beyond a chunk: grpc-go's default
	// receive limit, which a CommitObject's receipts (at most MaxReceiptSize each) share.
	maxUnaryLen = 4 << 20
)

func newGRPCServer(opts []grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(append(opts,
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
		grpc.ReadBufferSize(ioBufferSize),
		grpc.WriteBufferSize(64<<10),
		grpc.MaxRecvMsgSize(maxRecvMsgLen+maxUnaryLen),
	)...)
}

// DefaultMemoryLimit is the soft limit of a plugin's Go-managed memory that Serve sets
// (unless GOMEMLIMIT is set). With the binary's own pages it keeps a plugin's resident
// memory near 64 MiB. A backend that holds buffers of a documented size adds them with
// ReserveMemory, so that the process stays within that plus its buffers instead of the
// twice-the-heap the garbage collector would otherwise allow.
const DefaultMemoryLimit = 48 << 20

var reserved atomic.Int64

// ReserveMemory sets the bytes of buffers the backend holds at most (call it from the
// Factory with what the configuration implies; a later call replaces the reservation):
// the plugin's soft memory limit becomes DefaultMemoryLimit plus n. It does nothing when
// the operator set GOMEMLIMIT.
func ReserveMemory(n int64) {
	if os.Getenv("GOMEMLIMIT") != "" || n < 0 {
		return
	}
	reserved.Store(n)
	debug.SetMemoryLimit(DefaultMemoryLimit + n)
}

// ServeOption changes how Serve runs.
type ServeOption func(*serveConfig)

type serveConfig struct {
	log      hclog.Logger
	test     *plugin.ServeTestConfig
	validate func(Config) error
	staged   bool
}

// WithStagedReads lets a plugin that runs on the host's machine read each part from the
// host's staging file instead of receiving its bytes over the socket: it saves the host's
// read and send and the plugin's receive of every byte, and the plugin checks the file's
// bytes against their CRC-32C instead of their SHA-256 (the host computed both over the
// same bytes). The host offers it at Configure with a probe file in its staging directory;
// a plugin that cannot read that file (another machine, container or user) is sent the
// bytes as before. A part read this way must be stored within the host's
// PLUGIN_STALL_TIMEOUT, since the host sees no bytes go by.
func WithStagedReads() ServeOption { return func(c *serveConfig) { c.staged = true } }

// WithValidator sets how the plugin checks its settings without using them: the host's
// --check-config asks for this before the server starts. validate must not connect to
// anything; it returns an error wrapping ErrInvalidConfig that names the setting at fault.
// Without it, a validation request is answered as valid.
func WithValidator(validate func(Config) error) ServeOption {
	return func(c *serveConfig) { c.validate = validate }
}

// WithLogger replaces the default logger (JSON on stderr, level from CHUNKED_UPLOADER_PLUGIN_LOG_LEVEL).
func WithLogger(l hclog.Logger) ServeOption { return func(c *serveConfig) { c.log = l } }

// WithTestConfig serves in-process for tests (see plugin.ServeTestConfig).
func WithTestConfig(tc *plugin.ServeTestConfig) ServeOption {
	return func(c *serveConfig) { c.test = tc }
}

// Serve runs the plugin: it serves the storage protocol on behalf of the host that started
// this process until the host stops it, and then returns. A host that dies without
// stopping it is noticed within a second, and the process exits with status 0. name is
// the backend name (chunked-uploader-plugin-<name>); factory builds the Storage on every
// Configure (a Storage built before is closed, if it is a Closer).
//
// Run by hand, outside a host, it prints a short explanation and exits with status 1; with
// the one argument --version it prints the binary's version and revision (package
// buildinfo) and returns.
func Serve(name string, factory Factory, opts ...ServeOption) {
	// The host starts a plugin without arguments; --version is for whoever runs it by hand.
	if buildinfo.PrintVersion(os.Stdout, "chunked-uploader-plugin-"+name, os.Args[1:]) {
		return
	}
	cfg := serveConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.log == nil {
		level := hclog.LevelFromString(os.Getenv("CHUNKED_UPLOADER_PLUGIN_LOG_LEVEL"))
		if level == hclog.NoLevel {
			level = hclog.Info
		}
		cfg.log = hclog.New(&hclog.LoggerOptions{
			Name:       name,
			Level:      level,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	}
	if cfg.test == nil && os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "This is the %q storage plugin of chunked-uploader. It is started by the server\n"+
			"(STORAGE_BACKEND=%s) and is not meant to be run by hand.\n", name, name)
		os.Exit(1)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(DefaultMemoryLimit + reserved.Load())
	}
	if cfg.test == nil {
		go exitWithHost(cfg.log)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &Plugin{Name: name, Factory: factory, Validate: cfg.validate, Log: cfg.log, StagedReads: cfg.staged}},
		GRPCServer:      newGRPCServer,
		Logger:          cfg.log,
		Test:            cfg.test,
	})
}

// exitWithHost ends the plugin when the host that started it is gone (killed without a
// chance to stop its plugin): the process would otherwise live on, orphaned, holding its
// connections and files.
func exitWithHost(log hclog.Logger) {
	host := os.Getppid()
	for range time.Tick(time.Second) {
		if os.Getppid() != host {
			log.Warn("the host process is gone; exiting")
			os.Exit(0)
		}
	}
}
