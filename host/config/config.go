// Package config reads the server's settings from the environment and a .env file.
//
// Names and defaults follow the earlier server (README "Configuration"), with validation:
// the server refuses to start with a clear message on missing secrets or values that make
// no sense. Real environment variables win over .env.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host/dotenv"
	"github.com/chunked-uploader/chunked-uploader/host/webhook"
)

// ErrInvalid is wrapped by every error that says the configuration is wrong: the server
// exits with status 2 on it, and a restart cannot help.
var ErrInvalid = errors.New("invalid configuration")

// Limits on settings.
const (
	MinAPIKeyLength    = 16
	MinJWTSecretLength = 32
	MaxChunkSizeMB     = 5120
	MaxMaxParts        = 1_000_000
)

// DefaultMaxUpload is MAX_UPLOAD_SIZE's default, 1 TiB.
const DefaultMaxUpload = 1 << 40

// defaultMaxParts is MAX_PARTS's default: the parts of chunkSize bytes that the largest
// upload (maxUpload) needs, so that MAX_UPLOAD_SIZE alone bounds the size; 20,972 with the
// defaults. Capped at MaxMaxParts.
func defaultMaxParts(maxUpload, chunkSize int64) int64 {
	return min(partCount(maxUpload, chunkSize), MaxMaxParts)
}

// partCount is how many parts of chunkSize bytes size bytes take.
func partCount(size, chunkSize int64) int64 { return (size + chunkSize - 1) / chunkSize }

// Defaults of the connection limits. 1024 idle connections raised the host's RSS by 24 MiB
// (from 22 to 46 MiB: buffers, a goroutine each), within the 128 MiB the server is meant
// to run in.
const (
	DefaultBodyIdleTimeout = 60 * time.Second
	DefaultMaxConnections  = 1024
)

// Config is the validated server configuration.
type Config struct {
	APIKey    string
	JWTSecret string

	StorageBackend string // plugin name: chunked-uploader-plugin-<name>
	PluginDir      string
	PluginPath     string // PluginDir/chunked-uploader-plugin-<StorageBackend>
	PluginSHA256   string // hex; when set the plugin binary must match
	// PluginStallTimeout: a delivery with no progress for this long kills the plugin.
	PluginStallTimeout time.Duration
	// PluginStagedReads offers the plugin to read staged parts from TEMP_STORAGE_PATH
	// itself instead of receiving their bytes over its socket (PLUGIN_STAGED_READS, default
	// true; a plugin that cannot see the directory is sent the bytes anyway).
	PluginStagedReads bool
	// PluginPartFiles lets the host write parts straight into the unfinished file of a
	// plugin that offers it (the local backend: sdk.PartFiles) instead of staging them
	// (PLUGIN_PART_FILES, default true): every byte is then written to disk once, not twice.
	PluginPartFiles bool
	// PluginHealthTimeout bounds the backend's health probe and so GET /health.
	PluginHealthTimeout time.Duration
	// PluginLivenessTimeout: a plugin process that does not answer a liveness ping for this
	// long is killed and restarted.
	PluginLivenessTimeout time.Duration
	// HealthCacheTTL: how long a health result is reused for GET /health.
	HealthCacheTTL time.Duration

	LocalStoragePath string // absolute
	TempStoragePath  string // absolute: staging of parts
	DatabasePath     string

	ServerHost string
	ServerPort int

	ChunkSize int64 // bytes
	UploadTTL time.Duration
	MaxUpload int64 // bytes
	MaxParts  int64
	// CORSAllowedOrigins is "" (no browser access), "*", or a comma-separated list of origins.
	CORSAllowedOrigins string

	WebhookSecret      string // HMAC key for webhook signatures; "" sends none
	WebhookMaxAttempts int
	WebhookTimeout     time.Duration
	WebhookBackoff     time.Duration
	// WebhookAllowedHosts are the receivers allowed although not public: host names, IP
	// addresses and CIDR prefixes (see webhook.Policy).
	WebhookAllowedHosts []string

	// BodyIdleTimeout closes a connection whose request body sends nothing for this long.
	BodyIdleTimeout time.Duration
	// MaxConnections caps the open client connections.
	MaxConnections int

	Retention      time.Duration // records of complete/expired uploads are kept this long
	StagingReserve int64         // bytes init leaves free on the staging disk
	// DigestBacklog: the whole-file digest of parts written in place waits while parts are
	// being received, until an upload has this many bytes not yet in it (0: never waits).
	DigestBacklog int64

	// NodeID names this node in the ids of the uploads it creates, for a load balancer in
	// front of several nodes ("" for a single server). DrainTimeout is how long a node asked
	// to stop keeps serving its uploads while it refuses new ones. See cluster.go.
	NodeID       string
	DrainTimeout time.Duration

	CompleteWait            time.Duration
	MaxConcurrentFinalizing int
	// PartDeliveries and PartDeliveriesPerUpload bound the parts sent to the backend in
	// the background at once (part-wise delivery), in total and for one upload.
	PartDeliveries          int
	PartDeliveriesPerUpload int
	// MaxPartsInFlight bounds the part writes being received at once, in total and for one
	// upload (a part has at most one: a newer write of it replaces the one in flight).
	MaxPartsInFlight          int
	MaxPartsInFlightPerUpload int
	CleanupInterval           time.Duration
	LogFormat                 string // "text" or "json"; "" = text on a terminal, json otherwise
	LogLevel                  string
	// PluginPassthrough are the names and PREFIX* patterns of PLUGIN_ENV_PASSTHROUGH: the
	// variables a plugin gets besides its own <NAME>_* ones.
	PluginPassthrough []string
	PluginSettings    map[string]string // sent to the plugin through Configure
	PluginEnv         []string          // the plugin process's whole environment
	EnvFile           string            // the .env read, "" if none

	// Warnings are settings that are valid but do not do what they seem to (a
	// MAX_UPLOAD_SIZE that MAX_PARTS x CHUNK_SIZE_MB cannot reach): logged at every start
	// and by --check-config.
	Warnings []string
}

// Addr is the listen address.
func (c *Config) Addr() string {
	return fmt.Sprintf("%s:%d", c.ServerHost, c.ServerPort)
}

// secretNames are never passed to a plugin, whatever its name.
var secretNames = map[string]bool{"API_KEY": true, "JWT_SECRET": true, "WEBHOOK_SECRET": true}

// pluginEnvNames are the host variables a plugin process inherits: what a program needs to
// run (paths, locale, proxies, CA certificates), nothing else.
var pluginEnvNames = []string{
	"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "USER",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"http_proxy", "https_proxy", "no_proxy",
}

var backendName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// DefaultPluginPassthrough is PLUGIN_ENV_PASSTHROUGH's default: the variables of the AWS
// SDKs' standard credential chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, AWS_WEB_IDENTITY_TOKEN_FILE,
// ...), which S3-compatible plugins read. It is given to every plugin alike.
const DefaultPluginPassthrough = "AWS_*"

// Load reads the configuration. environ is the process environment (os.Environ()); envFile
// is the .env path to read if it exists (missing is fine, see LoadFile); exeDir is the
// directory of the running binary (the default PLUGIN_DIR). All problems are reported
// together.
func Load(environ []string, envFile, exeDir string) (*Config, error) {
	return load(environ, envFile, false, exeDir)
}

// LoadFile is Load for an .env file the operator named (-env-file): its absence is an
// error wrapping ErrInvalid.
func LoadFile(environ []string, envFile, exeDir string) (*Config, error) {
	return load(environ, envFile, true, exeDir)
}

func load(environ []string, envFile string, required bool, exeDir string) (*Config, error) {
	env := map[string]string{}
	c := &Config{}
	if vars, err := dotenv.ReadFile(envFile); err == nil {
		for k, v := range vars {
			env[k] = v
		}
		c.EnvFile = envFile
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	} else if required {
		return nil, fmt.Errorf("%w: env file %s does not exist", ErrInvalid, envFile)
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}

	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	get := func(k, def string) string {
		if v := strings.TrimSpace(env[k]); v != "" {
			return v
		}
		return def
	}
	integer := func(k string, def, min, max int64) int64 {
		s := get(k, "")
		if s == "" {
			return def
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < min || n > max {
			bad("%s must be a whole number from %d to %d, got %q", k, min, max, s)
			return def
		}
		return n
	}
	durationIn := func(k string, def, min, max time.Duration) time.Duration {
		s := get(k, "")
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < min || d > max {
			bad("%s must be a duration from %s to %s, such as %s, got %q", k, human(min), human(max), human(def), s)
			return def
		}
		return d
	}
	boolean := func(k string, def bool) bool {
		switch v := strings.ToLower(get(k, strconv.FormatBool(def))); v {
		case "true", "1", "yes", "on":
			return true
		case "false", "0", "no", "off":
			return false
		default:
			bad("%s must be true or false, not %q", k, v)
			return def
		}
	}
	abs := func(k, def string) string {
		p, err := filepath.Abs(get(k, def))
		if err != nil {
			bad("%s: %v", k, err)
		}
		return p
	}

	c.APIKey = env["API_KEY"]
	c.JWTSecret = env["JWT_SECRET"]
	switch {
	case strings.TrimSpace(c.APIKey) == "":
		bad("API_KEY is missing or empty: set it in the environment or .env (./init.sh generates one)")
	case len(c.APIKey) < MinAPIKeyLength:
		bad("API_KEY must be at least %d characters (./init.sh generates a random one)", MinAPIKeyLength)
	}
	switch {
	case strings.TrimSpace(c.JWTSecret) == "":
		bad("JWT_SECRET is missing or empty: set it in the environment or .env (./init.sh generates one)")
	case len(c.JWTSecret) < MinJWTSecretLength:
		bad("JWT_SECRET must be at least %d characters (./init.sh generates a random one)", MinJWTSecretLength)
	}

	c.StorageBackend = strings.ToLower(get("STORAGE_BACKEND", "local"))
	if !backendName.MatchString(c.StorageBackend) {
		bad("STORAGE_BACKEND %q is not a plugin name (lowercase letters, digits, '-' and '_')", c.StorageBackend)
	}
	c.PluginDir = abs("PLUGIN_DIR", exeDir)
	c.PluginPath = filepath.Join(c.PluginDir, "chunked-uploader-plugin-"+c.StorageBackend)
	if st, err := os.Stat(c.PluginDir); err == nil && st.Mode().Perm()&0o022 != 0 {
		bad("PLUGIN_DIR %s is writable by its group or others (mode %04o): whoever can write there can replace the storage plugin; make it writable by its owner only (chmod go-w %s)",
			c.PluginDir, st.Mode().Perm(), c.PluginDir)
	}
	if st, err := os.Stat(c.PluginPath); err != nil {
		bad("storage plugin for STORAGE_BACKEND=%s not found: %s does not exist (set PLUGIN_DIR, or run make build)", c.StorageBackend, c.PluginPath)
	} else if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		bad("storage plugin %s is not an executable file", c.PluginPath)
	} else if st.Mode().Perm()&0o022 != 0 {
		bad("storage plugin %s is writable by its group or others (mode %04o): whoever can write it can replace the plugin; make it writable by its owner only (chmod go-w %s)",
			c.PluginPath, st.Mode().Perm(), c.PluginPath)
	}
	c.PluginSHA256 = strings.ToLower(get("PLUGIN_SHA256", ""))
	if c.PluginSHA256 != "" && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.PluginSHA256) {
		bad("PLUGIN_SHA256 must be 64 hex digits (sha256sum of the plugin binary)")
	}

	c.PluginStallTimeout = durationIn("PLUGIN_STALL_TIMEOUT", 5*time.Minute, time.Second, 24*time.Hour)
	c.PluginStagedReads = boolean("PLUGIN_STAGED_READS", true)
	c.PluginPartFiles = boolean("PLUGIN_PART_FILES", true)
	c.PluginHealthTimeout = durationIn("PLUGIN_HEALTH_TIMEOUT", 10*time.Second, time.Second, 30*time.Second)
	c.PluginLivenessTimeout = durationIn("PLUGIN_LIVENESS_TIMEOUT", 10*time.Second, time.Second, 5*time.Minute)
	c.HealthCacheTTL = durationIn("HEALTH_CACHE_TTL", 2*time.Second, 0, time.Minute)
	c.LocalStoragePath = abs("LOCAL_STORAGE_PATH", "./uploads")
	c.TempStoragePath = abs("TEMP_STORAGE_PATH", "./staging")
	c.DatabasePath = get("DATABASE_PATH", "./uploads.db")
	c.ServerHost = get("SERVER_HOST", "0.0.0.0")
	c.ServerPort = int(integer("SERVER_PORT", 3000, 1, 65535))
	c.ChunkSize = integer("CHUNK_SIZE_MB", 50, 1, MaxChunkSizeMB) << 20
	c.UploadTTL = time.Duration(integer("UPLOAD_TTL_HOURS", 24, 1, 24*365)) * time.Hour
	c.MaxUpload = integer("MAX_UPLOAD_SIZE", DefaultMaxUpload, 1, 1<<62)
	c.MaxParts = integer("MAX_PARTS", defaultMaxParts(c.MaxUpload, c.ChunkSize), 1, MaxMaxParts)
	if most := c.MaxParts * c.ChunkSize; most < c.MaxUpload { // at most 10^6 x 5 GiB: no overflow
		c.Warnings = append(c.Warnings, fmt.Sprintf(
			"MAX_UPLOAD_SIZE %d cannot be reached: MAX_PARTS %d parts of CHUNK_SIZE_MB %d MiB hold at most %d bytes, and init refuses a larger total_size with too_many_parts; raise MAX_PARTS to %d (or CHUNK_SIZE_MB), or lower MAX_UPLOAD_SIZE",
			c.MaxUpload, c.MaxParts, c.ChunkSize>>20, most, partCount(c.MaxUpload, c.ChunkSize)))
	}
	c.CompleteWait = time.Duration(integer("COMPLETE_WAIT_SECONDS", 20, 0, 3600)) * time.Second
	c.MaxConcurrentFinalizing = int(integer("MAX_CONCURRENT_FINALIZATIONS", 4, 1, 256))
	c.PartDeliveries = int(integer("PART_DELIVERIES", 8, 1, 256))
	c.PartDeliveriesPerUpload = int(integer("PART_DELIVERIES_PER_UPLOAD", 4, 1, 64))
	c.MaxPartsInFlight = int(integer("MAX_PARTS_IN_FLIGHT", 64, 1, 4096))
	c.MaxPartsInFlightPerUpload = int(integer("MAX_PARTS_IN_FLIGHT_PER_UPLOAD", 16, 1, 1024))
	c.CleanupInterval = durationIn("CLEANUP_INTERVAL", time.Hour, time.Second, 24*time.Hour)
	c.Retention = durationIn("UPLOAD_RETENTION", 30*24*time.Hour, time.Minute, 10*365*24*time.Hour)
	c.WebhookSecret = env["WEBHOOK_SECRET"]
	switch {
	case c.WebhookSecret != "" && strings.TrimSpace(c.WebhookSecret) == "":
		bad("WEBHOOK_SECRET is only white space: set a random secret of at least 16 characters, or leave it empty for unsigned webhooks")
	case c.WebhookSecret != "" && len(c.WebhookSecret) < 16:
		bad("WEBHOOK_SECRET must be at least 16 characters when set")
	}
	c.WebhookMaxAttempts = int(integer("WEBHOOK_MAX_ATTEMPTS", 10, 1, 100))
	c.WebhookTimeout = durationIn("WEBHOOK_TIMEOUT", 10*time.Second, time.Second, 5*time.Minute)
	c.WebhookBackoff = durationIn("WEBHOOK_BACKOFF", 2*time.Second, 100*time.Millisecond, time.Hour)
	for _, h := range strings.Split(get("WEBHOOK_ALLOWED_HOSTS", ""), ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if _, err := webhook.ParseAllowedHost(h); err != nil {
			bad("WEBHOOK_ALLOWED_HOSTS: %v", err)
			continue
		}
		c.WebhookAllowedHosts = append(c.WebhookAllowedHosts, h)
	}
	c.BodyIdleTimeout = durationIn("BODY_IDLE_TIMEOUT", DefaultBodyIdleTimeout, time.Second, time.Hour)
	c.MaxConnections = int(integer("MAX_CONNECTIONS", DefaultMaxConnections, 16, 1_000_000))
	c.StagingReserve = integer("STAGING_RESERVE_MB", 1024, 0, 1<<30) << 20
	c.DigestBacklog = integer("DIGEST_BACKLOG_MB", 512, 0, 1<<20) << 20
	c.CORSAllowedOrigins = get("CORS_ALLOWED_ORIGINS", "")
	for _, o := range strings.Split(c.CORSAllowedOrigins, ",") {
		o = strings.TrimSpace(o)
		if o != "" && o != "*" && !regexp.MustCompile(`^https?://[^/\s*]+/?$`).MatchString(o) {
			bad("CORS_ALLOWED_ORIGINS: %q is not an origin such as https://app.example.com (a wildcard never matches: list each origin, or * alone for any)", o)
		}
	}
	c.LogFormat = strings.ToLower(get("LOG_FORMAT", ""))
	if c.LogFormat != "" && c.LogFormat != "json" && c.LogFormat != "text" {
		bad("LOG_FORMAT must be text or json, got %q", c.LogFormat)
	}
	c.LogLevel = strings.ToLower(get("LOG_LEVEL", "info"))
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL must be one of trace, debug, info, warn, error; got %q", c.LogLevel)
	}

	loadCluster(c, get, bad)

	c.PluginPassthrough = parsePassthrough(get("PLUGIN_ENV_PASSTHROUGH", DefaultPluginPassthrough), bad)
	c.PluginSettings = pluginSettings(c.StorageBackend, c.PluginPassthrough, env)
	if c.StorageBackend == "local" {
		// The default backend: LOCAL_STORAGE_PATH has a default and a relative path is the
		// host's working directory's (the plugin wants an absolute path).
		c.PluginSettings["LOCAL_STORAGE_PATH"] = c.LocalStoragePath
	}
	c.PluginEnv = pluginEnv(c.PluginPassthrough, env)
	c.PluginEnv = append(c.PluginEnv, "CHUNKED_UPLOADER_PLUGIN_LOG_LEVEL="+c.LogLevel)

	if len(errs) > 0 {
		return nil, fmt.Errorf("%w:\n  - %w", ErrInvalid, joinLines(errs))
	}
	return c, nil
}

// pluginSettings selects the settings of backend name: every variable named <NAME>_...
// (name upper-cased, '-' as '_') and every one passthrough matches. Secrets of the host are
// never included.
func pluginSettings(name string, passthrough []string, env map[string]string) map[string]string {
	prefix := strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
	out := map[string]string{}
	for k, v := range env {
		if secretNames[k] {
			continue
		}
		if strings.HasPrefix(k, prefix) || matchesAny(k, passthrough) {
			out[k] = v
		}
	}
	return out
}

// pluginEnv is the environment of the plugin process: pluginEnvNames, plus the variables
// passthrough matches (so that, say, the AWS SDK's credential chain finds its profile and
// web identity settings). Secrets of the host are never included.
func pluginEnv(passthrough []string, env map[string]string) []string {
	var out []string
	for _, k := range pluginEnvNames {
		if v, ok := env[k]; ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range env {
		if !secretNames[k] && !slices.Contains(pluginEnvNames, k) && matchesAny(k, passthrough) {
			out = append(out, k+"="+v)
		}
	}
	return out
}

var passthroughEntry = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\*?$`)

// parsePassthrough parses PLUGIN_ENV_PASSTHROUGH: "none", or a comma-separated list of
// variable names (AWS_PROFILE) and prefixes ending in * (AWS_*).
func parsePassthrough(s string, bad func(string, ...any)) []string {
	if strings.EqualFold(s, "none") {
		return nil
	}
	var out []string
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
		case !passthroughEntry.MatchString(e):
			bad("PLUGIN_ENV_PASSTHROUGH: %q is neither a variable name nor a prefix such as AWS_* (or set none)", e)
		case secretNames[e]:
			bad("PLUGIN_ENV_PASSTHROUGH: %s is a secret of the server and is never passed to a plugin", e)
		default:
			out = append(out, e)
		}
	}
	return out
}

// matchesAny reports whether the variable name k is one of patterns or starts with the
// prefix of one ending in *.
func matchesAny(k string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); (ok && strings.HasPrefix(k, prefix)) || k == p {
			return true
		}
	}
	return false
}

type lineErrors []error

func (l lineErrors) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n  - ")
}

func joinLines(errs []error) error { return lineErrors(errs) }

// human writes d the way settings are written: 30s, 5m, 24h (time.Duration.String would
// say 24h0m0s).
func human(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}
