package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// putMultipart streams r into a multipart upload and completes it only when sdk.CopyExact
// saw exactly size bytes followed by io.EOF. On any failure, including cancellation of ctx,
// it waits for the part uploads in flight and aborts the upload with a fresh context.
//
// We drive the multipart API directly rather than through a transfer helper: the SDK's
// feature/s3/manager is deprecated and its successor (feature/s3/transfermanager) is still
// v0, and neither lets us decide after the last byte whether to complete or abort.
func (s *Store) putMultipart(ctx context.Context, key string, r io.Reader, size int64) ([]byte, error) {
	s.abortLeftovers(ctx, key)
	ps := partSize(size, s.cfg.PartSize)
	nparts := (size + ps - 1) / ps
	s.running.create.Lock()
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:            aws.String(s.cfg.Bucket),
		Key:               aws.String(key),
		ChecksumAlgorithm: s.checksum,
	})
	if err == nil {
		s.running.add(aws.ToString(out.UploadId))
	}
	s.running.create.Unlock()
	if err != nil {
		return nil, fmt.Errorf("create multipart upload: %w", s.mapError(err))
	}
	defer s.running.remove(aws.ToString(out.UploadId))
	u := newUpload(ctx, s, key, aws.ToString(out.UploadId), ps, min(int64(s.cfg.Concurrency), nparts))
	s.log.Debug("multipart upload started", "key", key, "bytes", size, "part_size", ps, "parts", nparts)

	sum, err := sdk.CopyExact(u, r, size)
	if err == nil {
		err = u.finish(int(nparts))
	}
	if err != nil {
		u.abort(err)
		return nil, err
	}
	return sum, nil
}

// upload is one multipart upload in progress. It is an io.Writer that cuts what it is given
// into parts and uploads each full part in its own goroutine. At most cap(free) buffers
// exist, which bounds both memory and the parts in flight.
type upload struct {
	s        *Store
	key      string
	uploadID string

	ctx    context.Context // cancelled with the first failure as its cause
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	free   chan []byte // buffers not in use; nil entries are allocated on first use
	buf    []byte      // the part being filled
	size   int64       // part size
	number int32       // number of the part being filled

	mu    sync.Mutex
	parts []types.CompletedPart
}

func newUpload(ctx context.Context, s *Store, key, uploadID string, size, buffers int64) *upload {
	u := &upload{s: s, key: key, uploadID: uploadID, size: size, number: 1, free: make(chan []byte, buffers)}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	for range buffers {
		u.free <- nil
	}
	return u
}

// Write implements io.Writer for sdk.CopyExact.
func (u *upload) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if u.ctx.Err() != nil {
			return written, u.failure()
		}
		if u.buf == nil {
			select {
			case b := <-u.free:
				if b == nil {
					b = make([]byte, 0, u.size)
				}
				u.buf = b[:0]
			case <-u.ctx.Done():
				return written, u.failure()
			}
		}
		n := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+n]
		p = p[n:]
		written += n
		if int64(len(u.buf)) == u.size {
			u.send()
		}
	}
	return written, nil
}

// send uploads the filled buffer as the next part in the background.
func (u *upload) send() {
	buf, number := u.buf, u.number
	u.buf = nil
	u.number++
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		out, err := u.s.client.UploadPart(u.ctx, &s3.UploadPartInput{
			Bucket:            aws.String(u.s.cfg.Bucket),
			Key:               aws.String(u.key),
			UploadId:          aws.String(u.uploadID),
			PartNumber:        aws.Int32(number),
			Body:              bytes.NewReader(buf),
			ContentLength:     aws.Int64(int64(len(buf))),
			ChecksumAlgorithm: u.s.checksum,
		})
		u.free <- buf
		if err != nil {
			u.cancel(fmt.Errorf("upload part %d: %w", number, u.s.mapError(err)))
			return
		}
		u.mu.Lock()
		u.parts = append(u.parts, types.CompletedPart{
			PartNumber:        aws.Int32(number),
			ETag:              out.ETag,
			ChecksumCRC32:     out.ChecksumCRC32,
			ChecksumCRC32C:    out.ChecksumCRC32C,
			ChecksumCRC64NVME: out.ChecksumCRC64NVME,
			ChecksumSHA1:      out.ChecksumSHA1,
			ChecksumSHA256:    out.ChecksumSHA256,
		})
		u.mu.Unlock()
	}()
}

// failure is the error that stopped the upload: a part's, or the parent context's.
func (u *upload) failure() error {
	if err := context.Cause(u.ctx); err != nil {
		return err
	}
	return errors.New("upload stopped")
}

// finish sends the last part, waits for all parts and completes the upload.
func (u *upload) finish(nparts int) error {
	if len(u.buf) > 0 {
		u.send()
	}
	u.wg.Wait()
	if u.ctx.Err() != nil {
		return u.failure()
	}
	slices.SortFunc(u.parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	if len(u.parts) != nparts {
		return fmt.Errorf("%w: uploaded %d parts, expected %d", sdk.ErrSizeMismatch, len(u.parts), nparts)
	}
	_, err := u.s.client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(u.s.cfg.Bucket),
		Key:             aws.String(u.key),
		UploadId:        aws.String(u.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", u.s.mapError(err))
	}
	u.cancel(nil)
	return nil
}

// abort stops the part uploads in flight, waits for them, and aborts the upload so that S3
// drops every stored part. It uses a fresh context: ctx may be the reason for the abort.
func (u *upload) abort(cause error) {
	u.cancel(cause)
	u.wg.Wait()
	ctx, cancel := cleanupContext(u.ctx)
	defer cancel()
	_, err := u.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(u.s.cfg.Bucket),
		Key:      aws.String(u.key),
		UploadId: aws.String(u.uploadID),
	})
	if err != nil {
		u.s.log.Warn("aborting multipart upload failed; its parts stay stored until a lifecycle rule or a retry removes them",
			"key", u.key, "upload_id", u.uploadID, "error", err)
	}
}
