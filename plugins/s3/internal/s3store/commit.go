package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// CommitObject implements sdk.PartStorage with one CompleteMultipartUpload naming every
// part's ETag and, where the upload has the checksum algorithm, its SHA-256: S3 checks both
// against the parts it holds and makes the object visible atomically, or leaves nothing
// visible. S3 answers InvalidPart for a receipt whose part was replaced since (stale), which
// becomes sdk.ErrStaleReceipt, as do a missing receipt, one of another part and one this
// store did not issue.
//
// The object under the key is the one this handle committed only if its metadata holds the
// handle's nonce and it has the handle's size: a HeadObject checks that after every
// CompleteMultipartUpload that succeeded or found the upload gone (a commit whose answer
// was lost, then retried, returns the object again). Otherwise the handle is unknown:
// sdk.ErrNotFound.
//
// sha256 must be the digest declared at BeginObject, if one was (it is recorded in the
// object's metadata): another one is refused with sdk.ErrDigestMismatch and nothing becomes
// visible. The returned Object carries sha256 either way.
func (s *Store) CommitObject(ctx context.Context, hb []byte, receipts [][]byte, sum []byte) (sdk.Object, error) {
	h, err := s.decodeHandle(hb)
	if err != nil {
		return sdk.Object{}, fmt.Errorf("s3: commit object: %w", err)
	}
	if err := h.checkCommit(receipts, sum); err != nil {
		return sdk.Object{}, fmt.Errorf("s3: commit object %q: %w", h.key, err)
	}
	parts := make([]types.CompletedPart, len(receipts))
	for i, b := range receipts {
		rc, err := decodeReceipt(b)
		if err == nil && rc.number != i {
			err = fmt.Errorf("%w: receipt %d is part %d's", sdk.ErrStaleReceipt, i, rc.number)
		}
		if err != nil {
			return sdk.Object{}, fmt.Errorf("s3: commit object %q: %w", h.key, err)
		}
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(rc.etag)}
		if h.sha256Parts {
			parts[i].ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(rc.sha256))
		}
	}
	obj := sdk.Object{Key: h.key, Size: h.spec.Size, SHA256: bytes.Clone(sum), Location: s.location(h.key)}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(h.key),
		UploadId:        aws.String(h.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	var ae smithy.APIError
	switch {
	case err == nil:
		// Trust but verify: versitygw (v1.8.0) also answers success for an upload that is
		// gone (aborted) whenever some object exists under the key.
	case errors.As(err, &ae) && (ae.ErrorCode() == "InvalidPart" || ae.ErrorCode() == "InvalidPartOrder" || ae.ErrorCode() == "EntityTooSmall"):
		return sdk.Object{}, fmt.Errorf("s3: commit object %q: %w: S3 does not hold the parts the receipts name (%s): %w",
			h.key, sdk.ErrStaleReceipt, ae.ErrorCode(), err)
	case errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload":
		// Gone: completed already (a retry), aborted, or expired.
	default:
		return sdk.Object{}, fmt.Errorf("s3: commit object %q: complete multipart upload: %w", h.key, s.mapError(err))
	}
	ok, herr := s.committed(ctx, h)
	switch {
	case herr != nil:
		return sdk.Object{}, fmt.Errorf("s3: commit object %q: looking for the object of upload %s: %w", h.key, h.uploadID, herr)
	case !ok && err != nil:
		return sdk.Object{}, fmt.Errorf("s3: commit object %q: %w", h.key, s.mapError(err))
	case !ok:
		return sdk.Object{}, fmt.Errorf("s3: commit object %q: %w: S3 reported upload %s complete, but the object under the key is not its",
			h.key, sdk.ErrNotFound, h.uploadID)
	}
	s.log.Debug("part-wise object committed", "key", h.key, "upload_id", h.uploadID, "parts", len(parts))
	return obj, nil
}

// checkCommit checks what can be checked without S3: one receipt per part and the digest.
func (h *handle) checkCommit(receipts [][]byte, sum []byte) error {
	switch {
	case len(sum) != sha256.Size:
		return fmt.Errorf("%w: object sha256 of %d bytes", sdk.ErrDigestMismatch, len(sum))
	case h.spec.SHA256 != nil && !bytes.Equal(sum, h.spec.SHA256):
		return fmt.Errorf("%w: the object's sha256 is %x, but %x was declared at BeginObject and is recorded with it",
			sdk.ErrDigestMismatch, sum, h.spec.SHA256)
	case len(receipts) != h.spec.PartCount:
		return fmt.Errorf("%w: %d receipts for %d parts", sdk.ErrStaleReceipt, len(receipts), h.spec.PartCount)
	}
	return nil
}

// committed reports whether the object under h's key is the one h committed. Errors other
// than "no object" are returned: the host must not take the handle for lost while S3 is
// merely unreachable.
func (s *Store) committed(ctx context.Context, h *handle) (bool, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(h.key)})
	if err = s.mapError(err); errors.Is(err, sdk.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return out.Metadata[metaObjectID] == hex.EncodeToString(h.nonce) && aws.ToInt64(out.ContentLength) == h.spec.Size, nil
}
