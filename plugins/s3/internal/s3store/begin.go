package s3store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// BeginObject implements sdk.PartStorage. It aborts the unfinished multipart uploads of key
// (those of an earlier BeginObject whose handle the host never recorded, and those an
// earlier process's Put left behind), then creates a multipart upload with the SHA-256
// checksum algorithm, so that the server checks every part against its digest and keeps it.
//
// S3 takes an object's metadata only here, so the whole object's digest is recorded (as
// x-amz-meta-sha256, which Stat reports) only when spec.SHA256 declares it now; CommitObject
// then refuses any other digest. Without it the object has no recorded digest: copying the
// object onto itself to add metadata would rewrite all of its bytes, which part-wise storage
// exists to avoid.
//
// Objects S3 cannot take part-wise (no parts, parts under 5 MiB or over 5 GiB, more than
// 10,000 parts) are declined with an error wrapping sdk.ErrNotSupported.
func (s *Store) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	if err := sdk.ValidKey(key); err != nil {
		return nil, fmt.Errorf("s3: begin object: %w", err)
	}
	if err := checkSpec(spec); err != nil {
		return nil, fmt.Errorf("s3: begin object %q: %w", key, err)
	}
	if err := s.abortUploads(ctx, key); err != nil {
		if !errors.Is(err, sdk.ErrPermission) {
			return nil, fmt.Errorf("s3: begin object %q: aborting earlier uploads: %w", key, err)
		}
		// Credentials that may write but not list uploads: Put copes the same way.
		s.log.Warn("cannot look for unfinished multipart uploads to abort; they stay until a lifecycle rule removes them",
			"key", key, "error", err)
	}
	h := &handle{bucket: s.cfg.Bucket, key: key, nonce: make([]byte, nonceLen), spec: spec, sha256Parts: s.checksum != ""}
	_, _ = rand.Read(h.nonce)
	meta := map[string]string{metaObjectID: hex.EncodeToString(h.nonce)}
	if spec.SHA256 != nil {
		meta[metaSHA256] = hex.EncodeToString(spec.SHA256)
	}
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), Metadata: meta}
	if h.sha256Parts {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
	}
	out, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil && h.sha256Parts && refusesChecksums(err) {
		// A server without flexible checksums: the parts are still verified by their
		// signed payload hash (see PutPart).
		s.log.Info("S3 refused the SHA-256 checksum algorithm; parts are verified by their signed payload hash only", "error", err)
		h.sha256Parts = false
		in.ChecksumAlgorithm = ""
		out, err = s.client.CreateMultipartUpload(ctx, in)
	}
	if err != nil {
		return nil, fmt.Errorf("s3: begin object %q: create multipart upload: %w", key, s.mapError(err))
	}
	h.uploadID = aws.ToString(out.UploadId)
	if h.uploadID == "" || len(h.uploadID) > maxUploadIDLen || !printable(h.uploadID) {
		s.abortUpload(ctx, key, h.uploadID)
		return nil, fmt.Errorf("s3: begin object %q: S3 returned an unusable upload id %q", key, h.uploadID)
	}
	s.log.Debug("part-wise object started", "key", key, "upload_id", h.uploadID, "bytes", spec.Size, "parts", spec.PartCount)
	return h.encode(), nil
}

// refusesChecksums reports whether err is how a server without flexible checksums refuses
// CreateMultipartUpload's x-amz-checksum-algorithm.
func refusesChecksums(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "NotImplemented", "InvalidArgument", "InvalidRequest":
		return true
	}
	return false
}

// abortUpload aborts one upload after a failure, with a fresh context; failures are logged.
func (s *Store) abortUpload(ctx context.Context, key, uploadID string) {
	if uploadID == "" {
		return
	}
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(uploadID),
	})
	if err != nil {
		s.log.Warn("aborting a multipart upload failed", "key", key, "upload_id", uploadID, "error", err)
	}
}
