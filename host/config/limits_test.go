package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConnectionAndWebhookSettings(t *testing.T) {
	dir := pluginDir(t)
	base := []string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret}
	c, err := Load(base, filepath.Join(t.TempDir(), ".env"), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.BodyIdleTimeout != 60*time.Second || c.MaxConnections != 1024 || len(c.WebhookAllowedHosts) != 0 {
		t.Fatalf("defaults: BODY_IDLE_TIMEOUT %v, MAX_CONNECTIONS %d, WEBHOOK_ALLOWED_HOSTS %v",
			c.BodyIdleTimeout, c.MaxConnections, c.WebhookAllowedHosts)
	}
	c, err = Load(append(base, "BODY_IDLE_TIMEOUT=5s", "MAX_CONNECTIONS=200",
		"WEBHOOK_ALLOWED_HOSTS= 127.0.0.1, 10.0.0.0/8 ,hooks.internal,,::1"), filepath.Join(t.TempDir(), ".env"), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1", "10.0.0.0/8", "hooks.internal", "::1"}
	if c.BodyIdleTimeout != 5*time.Second || c.MaxConnections != 200 || !slices.Equal(c.WebhookAllowedHosts, want) {
		t.Fatalf("got BODY_IDLE_TIMEOUT %v, MAX_CONNECTIONS %d, WEBHOOK_ALLOWED_HOSTS %q", c.BodyIdleTimeout, c.MaxConnections, c.WebhookAllowedHosts)
	}

	refused := map[string]struct{ env, want string }{
		"idle too short":  {"BODY_IDLE_TIMEOUT=100ms", "BODY_IDLE_TIMEOUT"},
		"idle too long":   {"BODY_IDLE_TIMEOUT=2h", "BODY_IDLE_TIMEOUT"},
		"idle not a time": {"BODY_IDLE_TIMEOUT=60", "BODY_IDLE_TIMEOUT"},
		"too few conns":   {"MAX_CONNECTIONS=3", "MAX_CONNECTIONS"},
		"conns text":      {"MAX_CONNECTIONS=many", "MAX_CONNECTIONS"},
		"allowed url":     {"WEBHOOK_ALLOWED_HOSTS=http://10.0.0.1/", "WEBHOOK_ALLOWED_HOSTS"},
		"allowed port":    {"WEBHOOK_ALLOWED_HOSTS=127.0.0.1:8080", "WEBHOOK_ALLOWED_HOSTS"},
		"allowed glob":    {"WEBHOOK_ALLOWED_HOSTS=*.internal", "WEBHOOK_ALLOWED_HOSTS"},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			_, err := Load(append(base, tc.env), filepath.Join(t.TempDir(), ".env"), dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: err = %v, want it to name %s", tc.env, err, tc.want)
			}
		})
	}
}

// TestMaxUploadReachable: with the defaults the documented 1 TiB MAX_UPLOAD_SIZE needs
// 20,972 parts of 50 MiB, and MAX_PARTS's default follows MAX_UPLOAD_SIZE and CHUNK_SIZE_MB
// (the old default of 10,000 parts refused every init over 488 GiB with too_many_parts).
// Explicit settings that cannot reach MAX_UPLOAD_SIZE are accepted with a warning.
func TestMaxUploadReachable(t *testing.T) {
	dir := pluginDir(t)
	base := []string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret}
	tests := map[string]struct {
		env       []string
		maxParts  int64
		maxUpload int64
		warning   string // "" for none
	}{
		"defaults":               {nil, 20972, 1 << 40, ""},
		"derived from size":      {[]string{"MAX_UPLOAD_SIZE=3145729", "CHUNK_SIZE_MB=1"}, 4, 3145729, ""},
		"derived from chunk":     {[]string{"CHUNK_SIZE_MB=128"}, 8192, 1 << 40, ""},
		"derived, capped":        {[]string{"MAX_UPLOAD_SIZE=4611686018427387904", "CHUNK_SIZE_MB=1"}, 1_000_000, 1 << 62, "MAX_UPLOAD_SIZE 4611686018427387904 cannot be reached: MAX_PARTS 1000000 parts of CHUNK_SIZE_MB 1 MiB hold at most 1048576000000 bytes"},
		"explicit, consistent":   {[]string{"MAX_PARTS=10000", "MAX_UPLOAD_SIZE=524288000000"}, 10000, 524288000000, ""},
		"explicit MAX_PARTS":     {[]string{"MAX_PARTS=10000"}, 10000, 1 << 40, "MAX_UPLOAD_SIZE 1099511627776 cannot be reached: MAX_PARTS 10000 parts of CHUNK_SIZE_MB 50 MiB hold at most 524288000000 bytes, and init refuses a larger total_size with too_many_parts; raise MAX_PARTS to 20972"},
		"explicit, both set":     {[]string{"MAX_PARTS=4", "CHUNK_SIZE_MB=1", "MAX_UPLOAD_SIZE=4194305"}, 4, 4194305, "raise MAX_PARTS to 5"},
		"more parts than needed": {[]string{"MAX_PARTS=100000"}, 100000, 1 << 40, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Load(append(append([]string(nil), base...), tc.env...), filepath.Join(t.TempDir(), ".env"), dir)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.MaxParts != tc.maxParts || c.MaxUpload != tc.maxUpload {
				t.Errorf("MaxParts %d, MaxUpload %d; want %d, %d", c.MaxParts, c.MaxUpload, tc.maxParts, tc.maxUpload)
			}
			switch {
			case tc.warning == "" && len(c.Warnings) != 0:
				t.Errorf("warnings %q, want none", c.Warnings)
			case tc.warning != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], tc.warning)):
				t.Errorf("warnings %q, want one with %q", c.Warnings, tc.warning)
			}
			if len(c.Warnings) == 0 && c.MaxParts*c.ChunkSize < c.MaxUpload {
				t.Errorf("no warning, yet %d parts of %d bytes cannot hold %d", c.MaxParts, c.ChunkSize, c.MaxUpload)
			}
		})
	}
}
