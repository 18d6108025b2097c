package s3store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Store keeps objects in one S3 bucket. It is safe for concurrent use.
type Store struct {
	cfg    Config
	client *s3.Client
	log    sdk.Logger
	// checksum is the algorithm of the per-part checksums multipart uploads send (the SDK's
	// default, as its transfer manager does); the server verifies every part with it.
	checksum types.ChecksumAlgorithm
	running  inflight  // multipart uploads of this process, see abortLeftovers
	parts    partLocks // parts being stored by PutPart, see parts.go
}

// Interface guards.
var (
	_ sdk.Storage       = (*Store)(nil)
	_ sdk.HealthChecker = (*Store)(nil)
)

// Open is the plugin's sdk.Factory: it decodes the settings and builds a Store. It does not
// contact S3; Health does.
func Open(ctx context.Context, c sdk.Config, log sdk.Logger) (sdk.Storage, error) {
	cfg, err := ParseConfig(c)
	if err != nil {
		return nil, err
	}
	// The documented buffers: S3_PART_SIZE_MB x S3_CONCURRENCY (a file so large that its
	// part size is raised uses more, and the GC works harder for it).
	sdk.ReserveMemory(cfg.PartSize * int64(cfg.Concurrency))
	return New(ctx, cfg, log)
}

// New builds a Store from decoded settings.
func New(ctx context.Context, cfg Config, log sdk.Logger) (*Store, error) {
	var awsCfg aws.Config
	if cfg.AccessKeyID != "" {
		awsCfg = aws.Config{
			Region:      cfg.Region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)),
		}
	} else {
		opts := []func(*config.LoadOptions) error{config.WithRegion(cfg.Region)}
		if cfg.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
		}
		var err error
		if awsCfg, err = config.LoadDefaultConfig(ctx, opts...); err != nil {
			return nil, fmt.Errorf("%w: loading AWS configuration: %w", sdk.ErrInvalidConfig, err)
		}
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.ForcePathStyle
	})
	s := &Store{cfg: cfg, client: client, log: log, checksum: types.ChecksumAlgorithmCrc32}
	if awsCfg.RequestChecksumCalculation == aws.RequestChecksumCalculationWhenRequired {
		s.checksum = ""
	}
	return s, nil
}

// location is where users find the object under key.
func (s *Store) location(key string) string {
	return "s3://" + s.cfg.Bucket + "/" + key
}
