package s3store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// cleanupTimeout bounds an abort or delete made after a failure.
const cleanupTimeout = 30 * time.Second

// metaSHA256 is the user metadata (x-amz-meta-sha256) holding the hex SHA-256 of objects
// stored with a single PutObject. Multipart objects do not have it: their digest is known
// only when the upload completes.
const metaSHA256 = "sha256"

// Put implements sdk.Storage. Objects of up to one part go up in one PutObject, larger ones
// as a multipart upload (see multipart.go).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	if size > maxObjectLen {
		return sdk.Object{}, fmt.Errorf("s3: put %q: %w: %d bytes exceed S3's object size limit of 5 TiB", key, sdk.ErrInsufficientStorage, size)
	}
	var (
		sum []byte
		err error
	)
	if size <= s.cfg.PartSize {
		sum, err = s.putSingle(ctx, key, r, size)
	} else {
		sum, err = s.putMultipart(ctx, key, r, size)
	}
	if err != nil {
		return sdk.Object{}, fmt.Errorf("s3: put %q: %w", key, err)
	}
	return sdk.Object{Key: key, Size: size, SHA256: sum, Location: s.location(key)}, nil
}

// putSingle reads the whole object (at most one part) into memory, verifies it, and sends
// it with its SHA-256, which the server checks before storing.
func (s *Store) putSingle(ctx context.Context, key string, r io.Reader, size int64) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, size))
	sum, err := sdk.CopyExact(buf, r, size)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:         aws.String(s.cfg.Bucket),
		Key:            aws.String(key),
		Body:           bytes.NewReader(buf.Bytes()),
		ContentLength:  aws.Int64(size),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		Metadata:       map[string]string{metaSHA256: hex.EncodeToString(sum)},
	})
	if err != nil {
		return nil, s.mapError(err)
	}
	return sum, nil
}
