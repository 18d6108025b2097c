package sdk

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Config is the settings map a plugin receives through Configure: environment-style names
// (S3_BUCKET, SMB_HOST, ...) mapped to their values.
type Config map[string]string

// Get returns the value of key, or "" when it is not set.
func (c Config) Get(key string) string { return c[key] }

// Default returns the value of key, or def when it is not set or empty.
func (c Config) Default(key, def string) string {
	if v := strings.TrimSpace(c[key]); v != "" {
		return v
	}
	return def
}

// Required returns the value of key or an error wrapping ErrInvalidConfig when it is not
// set or empty.
func (c Config) Required(key string) (string, error) {
	v := strings.TrimSpace(c[key])
	if v == "" {
		return "", fmt.Errorf("%w: %s is required", ErrInvalidConfig, key)
	}
	return v, nil
}

// Int returns key parsed as an integer, def when it is not set, or an error wrapping
// ErrInvalidConfig when it does not parse or is below min.
func (c Config) Int(key string, def, min int64) (int64, error) {
	v := strings.TrimSpace(c[key])
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min {
		return 0, fmt.Errorf("%w: %s must be an integer >= %d, got %q", ErrInvalidConfig, key, min, v)
	}
	return n, nil
}

// Bool returns key parsed as a boolean (true/false/1/0/yes/no), def when it is not set.
func (c Config) Bool(key string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(c[key])) {
	case "":
		return def, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%w: %s must be true or false, got %q", ErrInvalidConfig, key, c[key])
}

// OnlyKnown returns an error wrapping ErrInvalidConfig when a setting whose name starts
// with prefix is not one of known (the first such in sorted order, with the known names):
// a misspelt S3_BUKET is refused instead of silently ignored. Settings without the prefix
// (AWS_* for the s3 plugin) are not checked.
func (c Config) OnlyKnown(prefix string, known ...string) error {
	for _, k := range c.Keys() {
		if strings.HasPrefix(k, prefix) && !slices.Contains(known, k) {
			return fmt.Errorf("%w: unknown setting %s (known: %s)", ErrInvalidConfig, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// Keys returns the setting names in sorted order (for logging names, never values).
func (c Config) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
