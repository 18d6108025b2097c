package config

import (
	"time"

	"github.com/chunked-uploader/chunked-uploader/host/node"
)

// Defaults of the settings for a node behind a load balancer (docs/deploy.md, "Scaling
// out"). Without NODE_ID they are 0: the server behaves as a single server always did.
const (
	// ClusterDrainTimeout is DRAIN_TIMEOUT's default with NODE_ID: long enough for a balancer
	// checking /health every 2 s to take the node out (2 failed checks) before it stops.
	ClusterDrainTimeout = 10 * time.Second

	MaxDrainTimeout = 10 * time.Minute
)

// loadCluster reads NODE_ID and DRAIN_TIMEOUT into c.
func loadCluster(c *Config, get func(k, def string) string, bad func(format string, args ...any)) {
	c.NodeID = get("NODE_ID", "")
	if c.NodeID != "" {
		if err := node.Valid(c.NodeID); err != nil {
			bad("NODE_ID: %v", err)
		}
	}
	drain := time.Duration(0)
	if c.NodeID != "" {
		drain = ClusterDrainTimeout
	}
	optional := func(k string, def, max time.Duration) time.Duration {
		s := get(k, "")
		if s == "" {
			return def
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > max {
			bad("%s must be a duration from 0 to %s such as 10s, got %q", k, max, s)
			return def
		}
		return d
	}
	c.DrainTimeout = optional("DRAIN_TIMEOUT", drain, MaxDrainTimeout)
}
