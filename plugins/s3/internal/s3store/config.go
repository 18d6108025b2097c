package s3store

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// S3 limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html).
const (
	mib          = 1 << 20
	minPartSize  = 5 * mib
	maxPartSize  = 5 << 30
	maxParts     = 10000
	maxObjectLen = 5 << 40
)

// Config holds the decoded settings.
type Config struct {
	// Endpoint is the URL of an S3-compatible server; empty means AWS.
	Endpoint string
	// Bucket must exist; the plugin never creates it.
	Bucket string
	Region string
	// ForcePathStyle addresses the bucket as endpoint/bucket/key instead of bucket.endpoint/key.
	ForcePathStyle bool
	// PartSize is the multipart part size in bytes. Put raises it for objects that would
	// otherwise need more than 10,000 parts.
	PartSize int64
	// Concurrency is the number of parts uploaded at once; a Put buffers at most
	// PartSize x Concurrency bytes.
	Concurrency int

	// Static credentials. When AccessKeyID is empty the SDK's default chain is used, with
	// Profile as the shared-config profile when set.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Profile         string
}

// settings are the S3_* names ParseConfig knows; any other S3_* name is refused as a typo.
var settings = []string{
	"S3_ENDPOINT", "S3_BUCKET", "S3_REGION", "S3_FORCE_PATH_STYLE", "S3_PART_SIZE_MB", "S3_CONCURRENCY",
}

// ParseConfig decodes and checks the plugin settings. Errors wrap sdk.ErrInvalidConfig.
func ParseConfig(c sdk.Config) (Config, error) {
	if err := c.OnlyKnown("S3_", settings...); err != nil {
		return Config{}, err
	}
	cfg := Config{
		Endpoint:        strings.TrimSpace(c.Get("S3_ENDPOINT")),
		Bucket:          c.Default("S3_BUCKET", "uploads"),
		Region:          c.Default("S3_REGION", "us-east-1"),
		AccessKeyID:     strings.TrimSpace(c.Get("AWS_ACCESS_KEY_ID")),
		SecretAccessKey: strings.TrimSpace(c.Get("AWS_SECRET_ACCESS_KEY")),
		SessionToken:    strings.TrimSpace(c.Get("AWS_SESSION_TOKEN")),
		Profile:         strings.TrimSpace(c.Get("AWS_PROFILE")),
	}
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Config{}, fmt.Errorf("%w: S3_ENDPOINT must be an http:// or https:// URL, got %q", sdk.ErrInvalidConfig, cfg.Endpoint)
		}
	}
	if err := checkBucketName(cfg.Bucket); err != nil {
		return Config{}, err
	}
	var err error
	if cfg.ForcePathStyle, err = c.Bool("S3_FORCE_PATH_STYLE", cfg.Endpoint != ""); err != nil {
		return Config{}, err
	}
	partMiB, err := c.Int("S3_PART_SIZE_MB", 16, minPartSize/mib)
	if err != nil {
		return Config{}, err
	}
	if partMiB > maxPartSize/mib {
		return Config{}, fmt.Errorf("%w: S3_PART_SIZE_MB must be at most %d, got %d", sdk.ErrInvalidConfig, maxPartSize/mib, partMiB)
	}
	cfg.PartSize = partMiB * mib
	conc, err := c.Int("S3_CONCURRENCY", 4, 1)
	if err != nil {
		return Config{}, err
	}
	if conc > 64 {
		return Config{}, fmt.Errorf("%w: S3_CONCURRENCY must be at most 64, got %d", sdk.ErrInvalidConfig, conc)
	}
	cfg.Concurrency = int(conc)
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return Config{}, fmt.Errorf("%w: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together", sdk.ErrInvalidConfig)
	}
	if cfg.SessionToken != "" && cfg.AccessKeyID == "" {
		return Config{}, fmt.Errorf("%w: AWS_SESSION_TOKEN needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", sdk.ErrInvalidConfig)
	}
	return cfg, nil
}

// checkBucketName catches what cannot be a bucket name anywhere: AWS's rules are stricter
// (3-63 characters of a-z, 0-9, '.', '-'), but legacy AWS buckets and some S3-compatible
// servers allow more, so the server decides the rest.
func checkBucketName(b string) error {
	if len(b) < 3 || len(b) > 255 || strings.ContainsFunc(b, func(r rune) bool {
		return r == '/' || r == '\\' || unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII
	}) {
		return fmt.Errorf("%w: S3_BUCKET %q is not a valid bucket name", sdk.ErrInvalidConfig, b)
	}
	return nil
}

// partSize returns the part size for an object of size bytes: the configured one, raised to
// a whole number of MiB when the object would otherwise need more than maxParts parts.
func partSize(size, configured int64) int64 {
	ps := configured
	if need := (size + maxParts - 1) / maxParts; need > ps {
		ps = (need + mib - 1) / mib * mib
	}
	return ps
}

// Validate checks the settings exactly as Open parses them, and connects to nothing: it is
// the plugin's validator (sdk.WithValidator), which the host's --check-config runs. Errors
// wrap sdk.ErrInvalidConfig and name the setting.
func Validate(c sdk.Config) error {
	_, err := ParseConfig(c)
	return err
}
