package s3store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// healthPrefix starts the name of the probe object Health writes and deletes.
const healthPrefix = ".chunked-uploader-health-"

// Health implements sdk.HealthChecker: the bucket must exist and the credentials must allow
// writing and deleting an object (the probe).
func (s *Store) Health(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	if err = s.mapError(err); errors.Is(err, sdk.ErrUnavailable) || ctx.Err() != nil {
		return fmt.Errorf("s3: checking bucket %q: %w", s.cfg.Bucket, err)
	}
	// Other HeadBucket failures are not conclusive: a HEAD response has no body, so S3 can
	// only say 403 or 404, and some servers answer 404 to unknown credentials; credentials
	// allowed to write but not to list the bucket are also enough for us. The probe's
	// answer names the reason (NoSuchBucket, InvalidAccessKeyId, ...).
	headErr := err

	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	key := healthPrefix + hex.EncodeToString(rnd[:])
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader([]byte("ok")),
		ContentLength: aws.Int64(2),
	})
	if err != nil {
		return fmt.Errorf("s3: writing a probe object to bucket %q: %w", s.cfg.Bucket, s.mapError(err))
	}
	if headErr != nil {
		s.log.Debug("HeadBucket failed but writing works", "bucket", s.cfg.Bucket, "error", headErr)
	}
	if err := s.Delete(ctx, key); err != nil {
		return fmt.Errorf("s3: deleting the probe object from bucket %q: %w", s.cfg.Bucket, err)
	}
	return nil
}
