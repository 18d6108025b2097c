package smbstore

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Config holds the decoded settings.
type Config struct {
	Host     string
	Port     int
	User     string
	Password string
	Domain   string
	Share    string
	// Path is the slash-separated directory inside the share that holds the objects; "" is
	// the share's root.
	Path string
}

// settings are the SMB_* names ParseConfig knows; any other SMB_* name is refused as a typo.
// SMB_MOUNT_POINT was read (and ignored) by the earlier server; it is accepted and ignored.
var settings = []string{
	"SMB_HOST", "SMB_PORT", "SMB_USER", "SMB_PASS", "SMB_DOMAIN", "SMB_SHARE", "SMB_PATH", "SMB_MOUNT_POINT",
}

// ParseConfig decodes and checks the plugin settings. Errors wrap sdk.ErrInvalidConfig.
func ParseConfig(c sdk.Config) (Config, error) {
	if err := c.OnlyKnown("SMB_", settings...); err != nil {
		return Config{}, err
	}
	cfg := Config{
		Host:     c.Default("SMB_HOST", "localhost"),
		User:     strings.TrimSpace(c.Get("SMB_USER")),
		Password: c.Get("SMB_PASS"),
		Domain:   strings.TrimSpace(c.Get("SMB_DOMAIN")),
		Share:    c.Default("SMB_SHARE", "share"),
	}
	port, err := c.Int("SMB_PORT", 445, 1)
	if err != nil {
		return Config{}, err
	}
	if port > 65535 {
		return Config{}, fmt.Errorf("%w: SMB_PORT must be a TCP port (1-65535), got %d", sdk.ErrInvalidConfig, port)
	}
	cfg.Port = int(port)
	if cfg.User == "" {
		return Config{}, fmt.Errorf("%w: SMB_USER is required (anonymous and guest logins are not supported)", sdk.ErrInvalidConfig)
	}
	if strings.ContainsAny(cfg.Host, `/\ `) {
		return Config{}, fmt.Errorf("%w: SMB_HOST must be a host name or address, got %q", sdk.ErrInvalidConfig, cfg.Host)
	}
	if strings.ContainsAny(cfg.Share, `/\`) {
		return Config{}, fmt.Errorf("%w: SMB_SHARE must be a share name without slashes, got %q", sdk.ErrInvalidConfig, cfg.Share)
	}
	if cfg.Path, err = cleanPath(c.Get("SMB_PATH")); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// cleanPath turns SMB_PATH into a slash-separated relative path: backslashes become slashes,
// leading and trailing separators are dropped, and every segment must be a valid key segment.
func cleanPath(p string) (string, error) {
	p = strings.Trim(strings.ReplaceAll(strings.TrimSpace(p), `\`, "/"), "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if err := sdk.ValidSegment(seg); err != nil {
			return "", fmt.Errorf("%w: SMB_PATH %q: %v", sdk.ErrInvalidConfig, p, err)
		}
	}
	return p, nil
}

// addr is the server's TCP address.
func (c Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// location is the smb:// URL of the object under key.
func (c Config) location(key string) string {
	host := c.Host
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	if c.Port != 445 {
		host += ":" + strconv.Itoa(c.Port)
	}
	return "smb://" + host + "/" + c.Share + "/" + c.join(key)
}

// join returns the share-relative path of key.
func (c Config) join(key string) string {
	if c.Path == "" {
		return key
	}
	return c.Path + "/" + key
}

// Validate checks the settings exactly as Open parses them, and connects to nothing: it is
// the plugin's validator (sdk.WithValidator), which the host's --check-config runs. Errors
// wrap sdk.ErrInvalidConfig and name the setting.
func Validate(c sdk.Config) error {
	_, err := ParseConfig(c)
	return err
}
