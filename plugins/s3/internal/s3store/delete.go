package s3store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Delete implements sdk.Storage. S3 answers success for a missing key; a NoSuchKey from a
// server that does not is ignored too.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(key),
	})
	if err = s.mapError(err); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return fmt.Errorf("s3: delete %q: %w", key, err)
	}
	return nil
}
