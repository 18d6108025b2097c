package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Durations out of their bounds, a blank webhook secret and plugin files others may write
// are refused, each naming the setting.
func TestLoadRefusesUnsafeValues(t *testing.T) {
	base := []string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret}
	tests := map[string]struct {
		env  []string
		want string
	}{
		"health timeout 1ns":   {append(base, "PLUGIN_HEALTH_TIMEOUT=1ns"), "PLUGIN_HEALTH_TIMEOUT must be a duration from 1s to 30s"},
		"health timeout 1h":    {append(base, "PLUGIN_HEALTH_TIMEOUT=1h"), "PLUGIN_HEALTH_TIMEOUT"},
		"stall timeout 1ms":    {append(base, "PLUGIN_STALL_TIMEOUT=1ms"), "PLUGIN_STALL_TIMEOUT"},
		"liveness 0":           {append(base, "PLUGIN_LIVENESS_TIMEOUT=0s"), "PLUGIN_LIVENESS_TIMEOUT"},
		"cache ttl 1h":         {append(base, "HEALTH_CACHE_TTL=1h"), "HEALTH_CACHE_TTL"},
		"cleanup 1ns":          {append(base, "CLEANUP_INTERVAL=1ns"), "CLEANUP_INTERVAL"},
		"webhook timeout 100y": {append(base, "WEBHOOK_TIMEOUT=876000h"), "WEBHOOK_TIMEOUT"},
		"webhook backoff 1ns":  {append(base, "WEBHOOK_BACKOFF=1ns"), "WEBHOOK_BACKOFF"},
		"retention 1s":         {append(base, "UPLOAD_RETENTION=1s"), "UPLOAD_RETENTION"},
		"blank webhook secret": {append(base, "WEBHOOK_SECRET="+strings.Repeat(" ", 16)), "WEBHOOK_SECRET is only white space"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(tc.env, filepath.Join(t.TempDir(), ".env"), pluginDir(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	t.Run("writable plugin dir", func(t *testing.T) {
		dir := pluginDir(t)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		_, err := Load(base, filepath.Join(t.TempDir(), ".env"), dir)
		if err == nil || !strings.Contains(err.Error(), "PLUGIN_DIR "+dir+" is writable by its group or others") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("writable plugin", func(t *testing.T) {
		dir := pluginDir(t)
		if err := os.Chmod(filepath.Join(dir, "chunked-uploader-plugin-local"), 0o775); err != nil {
			t.Fatal(err)
		}
		_, err := Load(base, filepath.Join(t.TempDir(), ".env"), dir)
		if err == nil || !strings.Contains(err.Error(), "chunked-uploader-plugin-local is writable by its group or others") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bounds accepted", func(t *testing.T) {
		env := append(base, "PLUGIN_HEALTH_TIMEOUT=1s", "HEALTH_CACHE_TTL=0s", "PLUGIN_STALL_TIMEOUT=3s", "WEBHOOK_BACKOFF=200ms", "CLEANUP_INTERVAL=1s")
		c, err := Load(env, filepath.Join(t.TempDir(), ".env"), pluginDir(t))
		if err != nil {
			t.Fatal(err)
		}
		if c.HealthCacheTTL != 0 || c.PluginHealthTimeout.Seconds() != 1 {
			t.Fatalf("%+v", c)
		}
	})
}

// Check refuses directories that cannot be used and a host name that does not resolve, and
// changes nothing.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	good := func() *Config {
		return &Config{
			TempStoragePath: filepath.Join(dir, "new", "staging"),
			DatabasePath:    filepath.Join(dir, "db", "uploads.db"),
			ServerHost:      "127.0.0.1",
		}
	}
	if err := good().Check(context.Background()); err != nil {
		t.Fatalf("good configuration: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Check created a directory (%v)", err)
	}
	tests := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"staging below a file": {func(c *Config) { c.TempStoragePath = filepath.Join(file, "staging") }, "TEMP_STORAGE_PATH " + file + "/staging cannot be used: " + file + " is not a directory"},
		"staging is a file":    {func(c *Config) { c.TempStoragePath = file }, "TEMP_STORAGE_PATH"},
		"database below file":  {func(c *Config) { c.DatabasePath = filepath.Join(file, "x", "uploads.db") }, "DATABASE_PATH"},
		"database is a dir":    {func(c *Config) { c.DatabasePath = dir }, "DATABASE_PATH " + dir + " is not a regular file"},
		"unresolvable host":    {func(c *Config) { c.ServerHost = "no-such-host.invalid" }, `SERVER_HOST "no-such-host.invalid"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := good()
			tc.mod(c)
			err := c.Check(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
