package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// PutPart implements sdk.PartStorage: host part p.Number is uploaded as S3 part p.Number+1
// in one UploadPart whose body is r itself, streamed: the plugin holds no more of a part
// than the HTTP client's copy buffer (32 KiB) and the reader's current chunk, whatever the
// part size.
//
// The server verifies the bytes twice against p.SHA256, which the host acknowledged: it is
// the request's SigV4 payload hash (x-amz-content-sha256, which every S3 server checks and
// which spares hashing the part in the plugin) and, where the upload has the SHA-256
// checksum algorithm, its x-amz-checksum-sha256 too. The last byte of the body is also held
// back until r has reported io.EOF, so the server never gets a whole body that r then
// disowned.
//
// S3 keeps the earlier copy of a part when an UploadPart of it fails. To keep the promise
// that a failed PutPart leaves its part absent, so that a commit with an earlier receipt of
// it fails, PutPart then replaces the part with an empty one (a tombstone, whose ETag no
// receipt has; S3 refusing it also reveals an upload that is gone, whose failure then wraps
// sdk.ErrNotFound). If even that fails (S3 unreachable), a warning is logged and the earlier
// copy stays: an earlier receipt then still commits it, and those are the earlier bytes
// exactly, since the receipt names their SHA-256 and ETag, which CompleteMultipartUpload
// checks.
//
// A part stored again with the same bytes gets the same ETag and checksum, so its earlier
// receipt remains valid (it names the same bytes); with other bytes the earlier receipt
// becomes stale.
func (s *Store) PutPart(ctx context.Context, hb []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	h, err := s.decodeHandle(hb)
	if err != nil {
		return nil, fmt.Errorf("s3: put part %d: %w", p.Number, err)
	}
	if p.Number < 0 || p.Number >= h.spec.PartCount {
		return nil, fmt.Errorf("s3: put part %d of %q: %w: the object has parts 0 to %d", p.Number, h.key, sdk.ErrSizeMismatch, h.spec.PartCount-1)
	}
	unlock := s.parts.lock(partID{h.uploadID, p.Number})
	defer unlock()
	rc, err := s.uploadPart(ctx, h, p, r)
	if err != nil {
		if !errors.Is(err, sdk.ErrNotFound) {
			// The empty part also tells whether the upload still exists: a server that
			// refuses an unknown upload early may reset the connection while the body is
			// being sent, and its answer is lost.
			// Not on the caller's context: a cancelled PutPart must leave the part absent
			// too (the upload may have completed on the server as ctx ended).
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			terr := s.tombstone(tctx, h, p.Number)
			cancel()
			if errors.Is(terr, sdk.ErrNotFound) {
				err = fmt.Errorf("%w (the part's upload failed: %v)", terr, err)
			} else if terr != nil {
				s.log.Warn("could not empty a part after a failed upload of it; an earlier receipt of it still names its earlier bytes",
					"key", h.key, "upload_id", h.uploadID, "part", p.Number, "error", terr)
			}
		}
		return nil, fmt.Errorf("s3: put part %d of %q: %w", p.Number, h.key, err)
	}
	return rc.encode(), nil
}

func (s *Store) uploadPart(ctx context.Context, h *handle, p sdk.PartInfo, r io.Reader) (*receipt, error) {
	if want := h.spec.PartSizeOf(p.Number); p.Size != want {
		return nil, fmt.Errorf("%w: part of %d bytes, the object's part %d has %d", sdk.ErrSizeMismatch, p.Size, p.Number, want)
	}
	if len(p.SHA256) != sha256.Size {
		return nil, fmt.Errorf("%w: part sha256 of %d bytes", sdk.ErrDigestMismatch, len(p.SHA256))
	}
	body := &holdbackReader{ctx: ctx, r: r, left: p.Size}
	in := &s3.UploadPartInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(h.key),
		UploadId:      aws.String(h.uploadID),
		PartNumber:    aws.Int32(int32(p.Number + 1)),
		Body:          body,
		ContentLength: aws.Int64(p.Size),
	}
	if h.sha256Parts {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(p.SHA256))
	}
	out, err := s.client.UploadPart(ctx, in, streamedBody(hex.EncodeToString(p.SHA256), h.sha256Parts))
	// The HTTP client may still read the body after an early answer; the host's reader
	// must not be touched once PutPart returned.
	rerr := body.close()
	switch {
	case rerr != nil:
		// The reader's own failure (wrong bytes, a broken stream, ctx) is the cause; the
		// HTTP client only reports that it could not send.
		return nil, rerr
	case err != nil:
		if ctx.Err() != nil {
			return nil, fmt.Errorf("upload part %d: %w", p.Number+1, ctx.Err())
		}
		return nil, fmt.Errorf("upload part %d: %w", p.Number+1, s.mapError(err))
	case body.left != 0:
		return nil, fmt.Errorf("%w: S3 answered before the part's %d bytes were sent", sdk.ErrSizeMismatch, p.Size)
	}
	rc := &receipt{number: p.Number, etag: aws.ToString(out.ETag), sha256: p.SHA256}
	if rc.etag == "" || len(rc.etag) > maxETagLen || !printable(rc.etag) {
		return nil, fmt.Errorf("upload part %d: S3 returned an unusable ETag %q", p.Number+1, rc.etag)
	}
	if got := aws.ToString(out.ChecksumSHA256); h.sha256Parts && got != "" && got != aws.ToString(in.ChecksumSHA256) {
		return nil, fmt.Errorf("%w: S3 stored part %d with sha256 %s, not %s", sdk.ErrDigestMismatch, p.Number+1, got, aws.ToString(in.ChecksumSHA256))
	}
	return rc, nil
}

// streamedBody makes an UploadPart send a body it cannot rewind or read twice: the SigV4
// payload hash is the part's known SHA-256 (over plain HTTP the SDK would otherwise read
// the body once to hash it, which needs a seekable body), there is a single attempt (a
// retry would need to rewind; the host sends the part again), and without the SHA-256
// checksum no checksum is computed (the SDK's default CRC32 would need a seekable body
// over HTTP, or aws-chunked encoding over HTTPS).
func streamedBody(payloadSHA256 string, checksum bool) func(*s3.Options) {
	return func(o *s3.Options) {
		o.RetryMaxAttempts = 1
		if !checksum {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		}
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("chunked-uploader:PartPayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, payloadSHA256), in)
				}), middleware.Before)
		})
	}
}

// tombstone replaces part n with an empty part, so that no receipt issued for it before
// remains valid (see PutPart).
func (s *Store) tombstone(ctx context.Context, h *handle, n int) error {
	ctx, cancel := cleanupContext(ctx)
	defer cancel()
	in := &s3.UploadPartInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(h.key),
		UploadId:      aws.String(h.uploadID),
		PartNumber:    aws.Int32(int32(n + 1)),
		Body:          bytes.NewReader(nil),
		ContentLength: aws.Int64(0),
	}
	if h.sha256Parts {
		empty := sha256.Sum256(nil)
		in.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
		in.ChecksumSHA256 = aws.String(base64.StdEncoding.EncodeToString(empty[:]))
	}
	if _, err := s.client.UploadPart(ctx, in); err != nil {
		return fmt.Errorf("upload an empty part %d: %w", n+1, s.mapError(err))
	}
	return nil
}

// holdbackReader hands out the left bytes of r but keeps the last one back until r has
// reported io.EOF (the sdk's part reader does so only once the bytes proved to be the
// part's), so that the request body is never complete before the part is. Nor is it when
// ctx (if set) ended by then: an S3 server that has the whole body finishes the UploadPart
// even after its client gave up, and a cancelled PutPart must leave the part absent. Its
// first error stays, and close stops it for good; both are safe while a Read is running.
type holdbackReader struct {
	mu     sync.Mutex
	ctx    context.Context
	r      io.Reader
	left   int64 // bytes not handed out yet
	last   [1]byte
	err    error // the first error of r, or of the stream's shape
	closed bool
}

var errBodyClosed = errors.New("s3: part body read after the upload returned")

func (b *holdbackReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, errBodyClosed
	case b.err != nil:
		return 0, b.err
	case b.left == 0:
		return 0, io.EOF
	case len(p) == 0:
		return 0, nil
	}
	if b.left > 1 {
		n, err := b.r.Read(p[:min(int64(len(p)), b.left-1)])
		b.left -= int64(n)
		switch {
		case err == io.EOF:
			b.err = fmt.Errorf("%w: the part's stream ended %d bytes early", sdk.ErrSizeMismatch, b.left)
		case err != nil:
			b.err = err
		}
		if n > 0 {
			return n, nil
		}
		return 0, b.err
	}
	// The last byte: read it, then insist on io.EOF before handing it out.
	if _, err := io.ReadFull(b.r, b.last[:]); err != nil {
		if err == io.EOF {
			err = fmt.Errorf("%w: the part's stream ended 1 byte early", sdk.ErrSizeMismatch)
		}
		b.err = err
		return 0, err
	}
	if err := sdk.ExpectEOF(b.r); err != nil {
		b.err = err
		return 0, err
	}
	if b.ctx != nil && b.ctx.Err() != nil {
		b.err = b.ctx.Err()
		return 0, b.err
	}
	b.left = 0
	p[0] = b.last[0]
	return 1, nil
}

// close stops the reader, waiting for a Read in progress, and returns its first error.
func (b *holdbackReader) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.err
}
