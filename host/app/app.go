// Package app wires the server together: database, staging, storage plugin, upload service,
// webhook sender, metrics, the HTTP API with its tus endpoint, and the HTTP server.
// cmd/chunked-uploader calls CheckConfig (--check-config) or Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/api"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/config"
	"github.com/chunked-uploader/chunked-uploader/host/memlimit"
	"github.com/chunked-uploader/chunked-uploader/host/metrics"
	"github.com/chunked-uploader/chunked-uploader/host/pluginmgr"
	"github.com/chunked-uploader/chunked-uploader/host/procs"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/host/tus"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/host/webhook"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

// Invalid reports whether err (from Run or CheckConfig) says the configuration is wrong, so
// that starting again cannot help: the command exits with status 2 then (systemd:
// RestartPreventExitStatus=2).
func Invalid(err error) bool {
	return errors.Is(err, config.ErrInvalid) || errors.Is(err, sdk.ErrInvalidConfig) || errors.Is(err, pluginmgr.ErrRefused)
}

// CheckConfig checks what can be checked before a start: cfg.Check, then the storage
// plugin's settings, which the plugin checks without connecting to anything
// (pluginmgr.Validate). It logs cfg.Warnings, starts nothing else and changes nothing.
func CheckConfig(ctx context.Context, cfg *config.Config, log hclog.Logger) error {
	logWarnings(cfg, log)
	if err := cfg.Check(ctx); err != nil {
		return err
	}
	return pluginmgr.Validate(ctx, pluginOptions(cfg, log))
}

// pluginOptions are the plugin manager's options for cfg.
func pluginOptions(cfg *config.Config, log hclog.Logger) pluginmgr.Options {
	return pluginmgr.Options{
		Name: cfg.StorageBackend, Path: cfg.PluginPath, SHA256: cfg.PluginSHA256,
		Settings: cfg.PluginSettings, Env: cfg.PluginEnv, Logger: log.Named("pluginmgr"),
		StallTimeout: cfg.PluginStallTimeout, HealthTimeout: cfg.PluginHealthTimeout,
		LivenessTimeout: cfg.PluginLivenessTimeout, HealthCacheTTL: cfg.HealthCacheTTL,
		StagingDir: stagingFor(cfg), PartFiles: cfg.PluginPartFiles,
	}
}

// stagingFor is the staging directory offered to the plugin for staged reads, or "".
func stagingFor(cfg *config.Config) string {
	if !cfg.PluginStagedReads {
		return ""
	}
	return cfg.TempStoragePath
}

// logWarnings logs the settings that are valid but do not do what they seem to.
func logWarnings(cfg *config.Config, log hclog.Logger) {
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w)
	}
}

// ShutdownTimeout bounds how long in-flight requests may run after a shutdown was asked for.
const ShutdownTimeout = 30 * time.Second

// Run serves until ctx is cancelled, then shuts down gracefully: it drains for
// cfg.DrainTimeout if set (new uploads refused, see api.Server.Drain), stops accepting,
// lets requests in flight finish (up to ShutdownTimeout), stops deliveries (they resume at
// the next start), stops the plugin and closes the database.
//
// It first logs cfg.Warnings and runs cfg.Check. Invalid reports true for the errors that
// say the configuration is wrong: cfg.Check's (config.ErrInvalid), a plugin that refuses its
// settings (sdk.ErrInvalidConfig) or cannot be run (pluginmgr.ErrRefused).
func Run(ctx context.Context, cfg *config.Config, log hclog.Logger) error {
	logWarnings(cfg, log)
	if err := cfg.Check(ctx); err != nil {
		return err
	}
	if dir := filepath.Dir(cfg.DatabasePath); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("database directory: %w", err)
		}
	}
	db, err := sqlite.Open(ctx, cfg.DatabasePath)
	if err != nil {
		return err
	}
	defer db.Close()
	stage, err := staging.New(cfg.TempStoragePath)
	if err != nil {
		return err
	}

	plugins := pluginmgr.New(pluginOptions(cfg, log))
	defer plugins.Close()
	if err := plugins.Start(ctx); err != nil {
		return fmt.Errorf("storage backend %q: %w", cfg.StorageBackend, err)
	}

	tokens := auth.NewTokens(cfg.JWTSecret)
	mets := metrics.New(metrics.Sources{UploadsByState: db.CountByStatus, PluginRestarts: plugins.Restarts,
		StagedBytes: stage.Bytes, UndeliveredParts: db.UndeliveredParts, Node: cfg.NodeID})
	var secret []byte // nil: no signature header
	if cfg.WebhookSecret != "" {
		secret = []byte(cfg.WebhookSecret)
	}
	policy, err := webhook.NewPolicy(cfg.WebhookAllowedHosts)
	if err != nil {
		return fmt.Errorf("WEBHOOK_ALLOWED_HOSTS: %w", err)
	}
	hooks := webhook.NewSender(db, webhook.Options{
		Secret: secret, MaxAttempts: cfg.WebhookMaxAttempts, Policy: policy,
		Timeout: cfg.WebhookTimeout, Backoff: cfg.WebhookBackoff, Logger: log.Named("webhook"), Metrics: mets,
	})
	hooks.Start()
	defer hooks.Close()
	mem := memlimit.New()
	gomaxprocs := procs.Set()
	svc := upload.New(db, stage, plugins, tokens, upload.Options{
		ChunkSize: cfg.ChunkSize, TTL: cfg.UploadTTL, MaxUpload: cfg.MaxUpload, MaxParts: cfg.MaxParts,
		CompleteWait: cfg.CompleteWait, MaxDeliveries: cfg.MaxConcurrentFinalizing,
		PartDeliveries: cfg.PartDeliveries, PartDeliveriesPerUpload: cfg.PartDeliveriesPerUpload,
		MaxPartWrites: cfg.MaxPartsInFlight, MaxPartWritesPerUpload: cfg.MaxPartsInFlightPerUpload,
		PartWritesChanged: mem.PartWrites,
		CleanupInterval:   cfg.CleanupInterval, Retention: cfg.Retention, StagingReserve: cfg.StagingReserve,
		DigestBacklog: cfg.DigestBacklog,
		Logger:        log.Named("upload"), Notifier: hooks, Metrics: mets, NodeID: cfg.NodeID,
	})
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer svc.Close()

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr(), err)
	}
	maxConns := connectionCap(cfg.MaxConnections, log)
	limiter := newConnLimiter(maxConns)
	ln = limiter.wrap(ln)
	apiKey := auth.NewAPIKey(cfg.APIKey)
	tusHandler := tus.New(svc, tus.Options{Secret: cfg.JWTSecret, MaxSize: cfg.MaxUpload, APIKey: apiKey,
		Metrics: mets, Logger: log.Named("tus")})
	handler := api.New(svc, apiKey, tokens, log.Named("api"), api.WithTus(tusHandler),
		api.WithCORS(api.NewCORS(cfg.CORSAllowedOrigins)), api.WithMetrics(mets),
		api.WithNode(cfg.NodeID),
		api.WithBodyIdleTimeout(cfg.BodyIdleTimeout), api.WithWebhookPolicy(policy))
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    api.ServerMaxHeaderBytes,
		ConnState:         limiter.connState,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	build := buildinfo.Read()
	log.Info("listening", "addr", ln.Addr().String(), "node", cfg.NodeID, "backend", cfg.StorageBackend,
		"chunk_size", cfg.ChunkSize, "staging", cfg.TempStoragePath, "database", cfg.DatabasePath,
		"max_connections", maxConns, "gomaxprocs", gomaxprocs, "version", build.Version, "revision", build.Revision)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if cfg.DrainTimeout > 0 {
		// Behind a load balancer: refuse new uploads (init, /health answer 503) while the
		// uploads here go on, until the balancer has noticed.
		log.Info("draining: new uploads are refused, the uploads here are still served", "for", cfg.DrainTimeout.String())
		handler.Drain()
		srv.SetKeepAlivesEnabled(false)
		select {
		case <-time.After(cfg.DrainTimeout):
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		}
	}
	log.Info("shutting down: finishing requests in flight", "timeout", ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("requests still running at the shutdown deadline were cut", "error", err)
		srv.Close()
	}
	log.Info("stopped")
	return nil
}

// fdsPerConnection and fdsReserved size the connection cap to the open-file limit: a
// connection uploading a part holds its socket and a staging file; the process keeps some
// for the database, the plugin and its logs.
const (
	fdsPerConnection = 2
	fdsReserved      = 64
)

// connectionCap is MAX_CONNECTIONS, lowered (with a warning) to what the open-file limit
// allows.
func connectionCap(want int, log hclog.Logger) int {
	limit, ok := openFileLimit()
	if !ok || limit <= fdsReserved {
		return want
	}
	fit := int(min((limit-fdsReserved)/fdsPerConnection, uint64(want)))
	if fit < want {
		fit = max(fit, 1)
		log.Warn("MAX_CONNECTIONS lowered to what the open-file limit allows; raise the limit (LimitNOFILE=, ulimit -n) to allow more",
			"max_connections", want, "open_file_limit", limit, "effective", fit)
	}
	return fit
}
