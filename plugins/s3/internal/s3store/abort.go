package s3store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// AbortObject implements sdk.PartStorage with AbortMultipartUpload, which drops every part
// of the upload. With a nil handle it aborts every unfinished multipart upload of exactly
// key (not of longer keys sharing it as a prefix), but not those of Puts running in this
// process. An upload S3 no longer knows is not an error. A handle must be one of this
// store's, for key.
func (s *Store) AbortObject(ctx context.Context, key string, handle []byte) error {
	if err := sdk.ValidKey(key); err != nil {
		return fmt.Errorf("s3: abort object: %w", err)
	}
	if handle == nil {
		if err := s.abortUploads(ctx, key); err != nil {
			return fmt.Errorf("s3: abort unfinished objects of %q: %w", key, err)
		}
		return nil
	}
	h, err := s.decodeHandle(handle)
	if err == nil && h.key != key {
		err = fmt.Errorf("%w: %w: the handle is for key %q", sdk.ErrNotFound, errBadHandle, h.key)
	}
	if err != nil {
		return fmt.Errorf("s3: abort object %q: %w", key, err)
	}
	if err := s.abortID(ctx, key, h.uploadID); err != nil {
		return fmt.Errorf("s3: abort object %q: %w", key, err)
	}
	return nil
}

// abortID aborts one multipart upload; one S3 does not know (any more) is not an error.
func (s *Store) abortID(ctx context.Context, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err = s.mapError(err); err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return fmt.Errorf("abort multipart upload %s: %w", uploadID, err)
	}
	return nil
}

// abortUploads aborts every multipart upload of exactly key except those of Puts running in
// this process, going through all pages of the listing. It returns the listing's error or
// the aborts' errors.
func (s *Store) abortUploads(ctx context.Context, key string) error {
	// Held like abortLeftovers does, so that a Put's upload is registered before we list.
	s.running.create.Lock()
	defer s.running.create.Unlock()
	var errs []error
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(key),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("list multipart uploads: %w", s.mapError(err)))...)
		}
		for _, u := range page.Uploads {
			id := aws.ToString(u.UploadId)
			if aws.ToString(u.Key) != key || s.running.has(id) {
				continue
			}
			if err := s.abortID(ctx, key, id); err != nil {
				errs = append(errs, err)
				continue
			}
			s.log.Info("aborted an unfinished multipart upload", "key", key, "upload_id", id)
		}
	}
	return errors.Join(errs...)
}
