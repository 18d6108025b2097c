package config

import (
	"os"
	"path/filepath"
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
	if c.ChunkSize != 50<<20 || c.ServerPort != 3000 || c.StorageBackend != "local" || c.MaxParts != 10000 {
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
		"plugin sha":       {append(base, "PLUGIN_SHA256=xyz"), "PLUGIN_SHA256"},
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

func TestDotEnvErrors(t *testing.T) {
	for name, in := range map[string]string{
		"no equals":    "JUSTAKEY\n",
		"unterminated": "A='abc\n",
		"space in key": "A B=1\n",
		"empty key":    "=1\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseDotEnv(in); err == nil {
				t.Fatalf("ParseDotEnv(%q) accepted", in)
			}
		})
	}
}

// The plugin gets its own settings and never the host's secrets, whatever its name.
func TestPluginSettingsAndEnv(t *testing.T) {
	env := map[string]string{
		"API_KEY": goodKey, "JWT_SECRET": goodSecret, "WEBHOOK_SECRET": "w",
		"S3_BUCKET": "b", "S3_REGION": "r", "AWS_ACCESS_KEY_ID": "ak", "SMB_HOST": "h",
		"PATH": "/usr/bin", "HOME": "/home/x", "DATABASE_PATH": "x.db",
	}
	s3 := pluginSettings("s3", env)
	if s3["S3_BUCKET"] != "b" || s3["AWS_ACCESS_KEY_ID"] != "ak" || len(s3) != 3 {
		t.Fatalf("s3 settings = %v", s3)
	}
	smb := pluginSettings("smb", env)
	if len(smb) != 1 || smb["SMB_HOST"] != "h" {
		t.Fatalf("smb settings = %v", smb)
	}
	for _, name := range []string{"api", "jwt", "webhook"} {
		if got := pluginSettings(name, env); len(got) != 0 {
			t.Fatalf("backend %q would get host secrets: %v", name, got)
		}
	}
	pe := strings.Join(pluginEnv("s3", env), "\n")
	for _, secret := range []string{"API_KEY", "JWT_SECRET", "WEBHOOK_SECRET", "DATABASE_PATH", "S3_BUCKET"} {
		if strings.Contains(pe, secret+"=") {
			t.Fatalf("plugin environment carries %s:\n%s", secret, pe)
		}
	}
	if !strings.Contains(pe, "PATH=/usr/bin") || !strings.Contains(pe, "AWS_ACCESS_KEY_ID=ak") {
		t.Fatalf("plugin environment lacks PATH or AWS_*:\n%s", pe)
	}
	if strings.Contains(strings.Join(pluginEnv("local", env), "\n"), "AWS_") {
		t.Fatal("local plugin gets AWS_* variables")
	}
}
