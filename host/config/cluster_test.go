package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadCluster(t *testing.T) {
	dir := pluginDir(t)
	base := []string{"API_KEY=" + goodKey, "JWT_SECRET=" + goodSecret}
	tests := map[string]struct {
		env         []string
		node        string
		drain, ttl  time.Duration
		wantErrPart string
	}{
		"single server":        {env: base, ttl: 2 * time.Second},
		"node":                 {env: append(base, "NODE_ID=eu-2"), node: "eu-2", drain: ClusterDrainTimeout, ttl: 2 * time.Second},
		"node, no drain":       {env: append(base, "NODE_ID=a", "DRAIN_TIMEOUT=0"), node: "a", drain: 0, ttl: 2 * time.Second},
		"node, own settings":   {env: append(base, "NODE_ID=a", "DRAIN_TIMEOUT=1m", "HEALTH_CACHE_TTL=500ms"), node: "a", drain: time.Minute, ttl: 500 * time.Millisecond},
		"single, cached":       {env: append(base, "HEALTH_CACHE_TTL=5s"), ttl: 5 * time.Second},
		"node too long":        {env: append(base, "NODE_ID=abcdefg"), wantErrPart: "NODE_ID"},
		"node uppercase":       {env: append(base, "NODE_ID=A"), wantErrPart: "NODE_ID"},
		"node underscore":      {env: append(base, "NODE_ID=a_b"), wantErrPart: "NODE_ID"},
		"drain negative":       {env: append(base, "DRAIN_TIMEOUT=-1s"), wantErrPart: "DRAIN_TIMEOUT"},
		"drain too long":       {env: append(base, "DRAIN_TIMEOUT=11m"), wantErrPart: "DRAIN_TIMEOUT"},
		"drain not a duration": {env: append(base, "DRAIN_TIMEOUT=10"), wantErrPart: "DRAIN_TIMEOUT"},
		"ttl too long":         {env: append(base, "HEALTH_CACHE_TTL=2m"), wantErrPart: "HEALTH_CACHE_TTL"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := Load(tc.env, filepath.Join(t.TempDir(), ".env"), dir)
			if tc.wantErrPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrPart) {
					t.Fatalf("Load: %v, want an error about %s", err, tc.wantErrPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.NodeID != tc.node || c.DrainTimeout != tc.drain || c.HealthCacheTTL != tc.ttl {
				t.Errorf("NodeID %q, DrainTimeout %v, HealthCacheTTL %v; want %q, %v, %v",
					c.NodeID, c.DrainTimeout, c.HealthCacheTTL, tc.node, tc.drain, tc.ttl)
			}
		})
	}
}
