package s3store

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Stat implements sdk.Storage with a HeadObject. SHA256 is set from the object's metadata:
// for objects stored with a single PutObject, and for part-wise ones whose digest was
// declared at BeginObject; not for Put's multipart objects.
func (s *Store) Stat(ctx context.Context, key string) (sdk.Object, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		return sdk.Object{}, fmt.Errorf("s3: stat %q: %w", key, s.mapError(err))
	}
	obj := sdk.Object{Key: key, Size: aws.ToInt64(out.ContentLength), Location: s.location(key)}
	if sum, err := hex.DecodeString(out.Metadata[metaSHA256]); err == nil && len(sum) == 32 {
		obj.SHA256 = sum
	}
	return obj, nil
}
