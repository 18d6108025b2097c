package config

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	goodKey    = "api-key-0123456789"
	goodSecret = "jwt-secret-0123456789-0123456789-0123"
)

// pluginDir returns a directory holding an executable chunked-uploader-plugin-local.
func pluginDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "chunked-uploader-plugin-local"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLoadDefaults(t *testing.T) {
	dir := pluginDir(t)
	c, err := Load([]string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret}, filepath.Join(t.TempDir(), ".env"), dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.ChunkSize != 50<<20 || c.ServerPort != 3000 || c.StorageBackend != "local" ||
		c.MaxUpload != 1<<40 || c.MaxParts != 20972 || !c.PluginStagedReads || !c.PluginPartFiles ||
		c.DigestBacklog != 512<<20 || len(c.Warnings) != 0 {
		t.Fatalf("defaults wrong: %+v", c)
	}
	if c.PluginPath != filepath.Join(dir, "chunked-uploader-plugin-local") {
		t.Fatalf("PluginPath = %s", c.PluginPath)
	}
	if !filepath.IsAbs(c.LocalStoragePath) || c.PluginSettings["LOCAL_STORAGE_PATH"] != c.LocalStoragePath {
		t.Fatalf("local path not absolute or not passed: %q %v", c.LocalStoragePath, c.PluginSettings)
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := pluginDir(t)
	base := []string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret}
	tests := map[string]struct {
		env  []string
		want string
	}{
		"no api key":       {[]string{"JWT_SECRET=" + goodSecret}, "API_KEY is missing"},
		"empty api key":    {[]string{"API_KEY=", "JWT_SECRET=" + goodSecret}, "API_KEY is missing"},
		"blank api key":    {[]string{"API_KEY=   ", "JWT_SECRET=" + goodSecret}, "API_KEY is missing"},
		"short api key":    {[]string{"API_KEY=short", "JWT_SECRET=" + goodSecret}, "API_KEY must be at least"},
		"no jwt secret":    {[]string{"API_KEY=" + goodKey}, "JWT_SECRET is missing"},
		"short jwt secret": {[]string{"API_KEY=" + goodKey, "JWT_SECRET=abc"}, "JWT_SECRET must be at least"},
		"chunk zero":       {append(base, "CHUNK_SIZE_MB=0"), "CHUNK_SIZE_MB"},
		"chunk negative":   {append(base, "CHUNK_SIZE_MB=-5"), "CHUNK_SIZE_MB"},
		"chunk text":       {append(base, "CHUNK_SIZE_MB=fifty"), "CHUNK_SIZE_MB"},
		"chunk fraction":   {append(base, "CHUNK_SIZE_MB=0.5"), "CHUNK_SIZE_MB"},
		"port":             {append(base, "SERVER_PORT=70000"), "SERVER_PORT"},
		"ttl":              {append(base, "UPLOAD_TTL_HOURS=0"), "UPLOAD_TTL_HOURS"},
		"backend missing":  {append(base, "STORAGE_BACKEND=nosuch"), "not found"},
		"backend name":     {append(base, "STORAGE_BACKEND=../x"), "not a plugin name"},
		"cleanup interval": {append(base, "CLEANUP_INTERVAL=soon"), "CLEANUP_INTERVAL"},
		"log format":       {append(base, "LOG_FORMAT=xml"), "LOG_FORMAT"},
		"staged reads":     {append(base, "PLUGIN_STAGED_READS=maybe"), "PLUGIN_STAGED_READS"},
		"part files":       {append(base, "PLUGIN_PART_FILES=sometimes"), "PLUGIN_PART_FILES"},
		"digest backlog":   {append(base, "DIGEST_BACKLOG_MB=-1"), "DIGEST_BACKLOG_MB"},
		"plugin sha":       {append(base, "PLUGIN_SHA256=xyz"), "PLUGIN_SHA256"},
		"cors wildcard":    {append(base, "CORS_ALLOWED_ORIGINS=https://app.example.com,https://*.example.com"), "a wildcard never matches"},
		"cors path":        {append(base, "CORS_ALLOWED_ORIGINS=https://app.example.com/x"), "CORS_ALLOWED_ORIGINS"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(tc.env, filepath.Join(t.TempDir(), ".env"), dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadAllProblemsAtOnce(t *testing.T) {
	_, err := Load([]string{"CHUNK_SIZE_MB=0"}, filepath.Join(t.TempDir(), ".env"), pluginDir(t))
	for _, want := range []string{"API_KEY", "JWT_SECRET", "CHUNK_SIZE_MB"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %s", err, want)
		}
	}
}

func TestDotEnvAndPrecedence(t *testing.T) {
	dir := pluginDir(t)
	env := filepath.Join(t.TempDir(), ".env")
	content := "# comment\nexport API_KEY=" + goodKey + "\nJWT_SECRET='" + goodSecret + "'\nSERVER_PORT=4000 # trailing\nCHUNK_SIZE_MB=\"8\"\n"
	if err := os.WriteFile(env, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load([]string{"SERVER_PORT=5000"}, env, dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.APIKey != goodKey || c.JWTSecret != goodSecret || c.ChunkSize != 8<<20 {
		t.Fatalf("values from .env not read: %+v", c)
	}
	if c.ServerPort != 5000 {
		t.Fatalf("environment must win over .env: port %d", c.ServerPort)
	}
	if c.EnvFile != env {
		t.Fatalf("EnvFile = %q", c.EnvFile)
	}
}

// A .env that does not parse is refused with its path and line (the format is dotenv's).
func TestDotEnvErrors(t *testing.T) {
	env := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(env, []byte("API_KEY="+goodKey+"\nJUSTAKEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(nil, env, pluginDir(t))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), env+": line 2: expected KEY=VALUE") {
		t.Fatalf("Load = %v, want ErrInvalid naming %s line 2", err, env)
	}
}

// An .env file the operator named must exist (LoadFile); the default one may be missing
// (Load). The old code ignored a missing -env-file silently.
func TestEnvFileRequired(t *testing.T) {
	dir := pluginDir(t)
	missing := filepath.Join(t.TempDir(), "missing.env")
	base := []string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret}
	if c, err := Load(base, missing, dir); err != nil || c.EnvFile != "" {
		t.Fatalf("Load with a missing default .env = %+v, %v; want it ignored", c, err)
	}
	_, err := LoadFile(base, missing, dir)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "env file "+missing+" does not exist") {
		t.Fatalf("LoadFile(missing) = %v, want ErrInvalid naming the file", err)
	}
	present := filepath.Join(t.TempDir(), "x.env")
	if err := os.WriteFile(present, []byte("SERVER_PORT=4001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadFile(base, present, dir); err != nil || c.ServerPort != 4001 || c.EnvFile != present {
		t.Fatalf("LoadFile(present) = %+v, %v", c, err)
	}
}

// The plugin gets its own settings and never the host's secrets, whatever its name.
func TestPluginSettingsAndEnv(t *testing.T) {
	env := map[string]string{
		"API_KEY": goodKey, "JWT_SECRET": goodSecret, "WEBHOOK_SECRET": "w",
		"S3_BUCKET": "b", "S3_REGION": "r", "AWS_ACCESS_KEY_ID": "ak", "SMB_HOST": "h",
		"PATH": "/usr/bin", "HOME": "/home/x", "DATABASE_PATH": "x.db",
	}
	aws := []string{"AWS_*"}
	s3 := pluginSettings("s3", aws, env)
	if s3["S3_BUCKET"] != "b" || s3["AWS_ACCESS_KEY_ID"] != "ak" || len(s3) != 3 {
		t.Fatalf("s3 settings = %v", s3)
	}
	smb := pluginSettings("smb", nil, env)
	if len(smb) != 1 || smb["SMB_HOST"] != "h" {
		t.Fatalf("smb settings = %v", smb)
	}
	for _, name := range []string{"api", "jwt", "webhook"} {
		if got := pluginSettings(name, []string{"API_KEY", "JWT_*", "WEBHOOK_*"}, env); len(got) != 0 {
			t.Fatalf("backend %q would get host secrets: %v", name, got)
		}
	}
	pe := strings.Join(pluginEnv(aws, env), "\n")
	for _, secret := range []string{"API_KEY", "JWT_SECRET", "WEBHOOK_SECRET", "DATABASE_PATH", "S3_BUCKET"} {
		if strings.Contains(pe, secret+"=") {
			t.Fatalf("plugin environment carries %s:\n%s", secret, pe)
		}
	}
	if !strings.Contains(pe, "PATH=/usr/bin") || !strings.Contains(pe, "AWS_ACCESS_KEY_ID=ak") {
		t.Fatalf("plugin environment lacks PATH or AWS_*:\n%s", pe)
	}
	if pe := strings.Join(pluginEnv(nil, env), "\n"); strings.Contains(pe, "AWS_") {
		t.Fatalf("nothing passed through, yet the environment has AWS_*:\n%s", pe)
	}
	if pe := pluginEnv([]string{"PATH", "P*"}, env); len(pe) != 2 {
		t.Fatalf("a passed-through PATH appears twice: %q", pe)
	}
}

// PLUGIN_ENV_PASSTHROUGH decides what a plugin gets besides <NAME>_*, the same for every
// plugin name: by default AWS_* (the .env files of s3 deployments keep working), "none" for
// nothing, or the operator's names and prefixes.
func TestPluginEnvPassthrough(t *testing.T) {
	dir := pluginDir(t)
	for _, name := range []string{"mine", "s3-compatible"} {
		if err := os.WriteFile(filepath.Join(dir, "chunked-uploader-plugin-"+name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := []string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret, "AWS_ACCESS_KEY_ID=ak", "AWS_PROFILE=p",
		"MINE_ROOT=/r", "S3_COMPATIBLE_BUCKET=b", "VAULT_ADDR=https://v", "VAULT_TOKEN=t", "GOOGLE_CREDENTIALS=g"}
	tests := map[string]struct {
		backend, passthrough string
		want                 []string // setting names, sorted
	}{
		"default passes AWS_* to any plugin": {"s3-compatible", "", []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "S3_COMPATIBLE_BUCKET"}},
		"none":                               {"s3-compatible", "none", []string{"S3_COMPATIBLE_BUCKET"}},
		"names and prefixes":                 {"mine", "VAULT_*, GOOGLE_CREDENTIALS", []string{"GOOGLE_CREDENTIALS", "MINE_ROOT", "VAULT_ADDR", "VAULT_TOKEN"}},
		"one name":                           {"mine", "AWS_PROFILE", []string{"AWS_PROFILE", "MINE_ROOT"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := append(append([]string(nil), base...), "STORAGE_BACKEND="+tc.backend, "PLUGIN_ENV_PASSTHROUGH="+tc.passthrough)
			c, err := Load(env, filepath.Join(t.TempDir(), ".env"), dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := slices.Sorted(maps.Keys(c.PluginSettings)); !slices.Equal(got, tc.want) {
				t.Fatalf("settings %q, want %q", got, tc.want)
			}
			var envNames []string
			for _, kv := range c.PluginEnv {
				if k, _, _ := strings.Cut(kv, "="); k != "CHUNKED_UPLOADER_PLUGIN_LOG_LEVEL" && k != "PATH" && k != "HOME" {
					envNames = append(envNames, k)
				}
			}
			slices.Sort(envNames)
			var wantEnv []string
			for _, k := range tc.want {
				if !strings.HasPrefix(k, strings.ToUpper(strings.ReplaceAll(tc.backend, "-", "_"))+"_") {
					wantEnv = append(wantEnv, k)
				}
			}
			if !slices.Equal(envNames, wantEnv) {
				t.Fatalf("process environment has %q, want %q", envNames, wantEnv)
			}
		})
	}
	for value, msg := range map[string]string{
		"AWS_*,*":               `"*" is neither a variable name nor a prefix`,
		"AWS-*":                 `"AWS-*" is neither`,
		"A*B":                   `"A*B" is neither`,
		"JWT_SECRET":            "JWT_SECRET is a secret of the server",
		"AWS_*, WEBHOOK_SECRET": "WEBHOOK_SECRET is a secret",
	} {
		_, err := Load(append(base, "PLUGIN_ENV_PASSTHROUGH="+value), filepath.Join(t.TempDir(), ".env"), dir)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), msg) {
			t.Errorf("PLUGIN_ENV_PASSTHROUGH=%s: %v, want an error with %q", value, err, msg)
		}
	}
}
