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
