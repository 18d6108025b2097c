package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

// Init starts an upload of size bytes to be delivered as filename (which may carry a directory
// path, such as "videos/2024/movie.mp4"). It is retried on temporary failures; if an answer is
// lost the server may keep an unused upload, which expires with its TTL.
func (c *Client) Init(ctx context.Context, filename string, size int64, opts InitOptions) (*InitResponse, error) {
	body := wire.InitRequest{Filename: filename, TotalSize: size, ChecksumSHA256: opts.ChecksumSHA256, WebhookURL: opts.WebhookURL}
	var out InitResponse
	if _, err := c.doJSON(ctx, http.MethodPost, c.endpoint(nil, "upload", "init"), body, &out); err != nil {
		return nil, fmt.Errorf("init %q: %w", filename, err)
	}
	if out.FileID == "" || len(out.Parts) != out.TotalParts {
		return nil, fmt.Errorf("init %q: malformed answer (file_id %q, %d parts listed of %d)",
			filename, out.FileID, len(out.Parts), out.TotalParts)
	}
	return &out, nil
}

// UploadPart sends part n of upload id, size bytes read from body, with the part's token. It
// makes one attempt: body cannot be read twice. UploadPartAt retries and sends a checksum.
func (c *Client) UploadPart(ctx context.Context, id string, n int, token string, body io.Reader, size int64) (*PartResponse, error) {
	var out PartResponse
	req := c.partRequest(id, n, token, nil, func() (io.Reader, int64) { return body, size })
	if _, err := c.do(ctx, req, &out); err != nil {
		return nil, fmt.Errorf("upload %s part %d: %w", id, n, err)
	}
	return &out, nil
}

// UploadPartAt sends part n of upload id: the size bytes of r at offset off. It first reads
// them once to compute their SHA-256, which goes in X-Checksum-SHA256 so that the server
// refuses bytes that changed or were damaged in transit, then sends them, retrying as the
// client's RetryPolicy says. sent, if not nil, is called with the bytes of the current attempt
// as they are handed to the connection (from the goroutine that writes the request).
func (c *Client) UploadPartAt(ctx context.Context, id string, n int, token string, r io.ReaderAt, off, size int64, sent func(attemptBytes int64)) (*PartResponse, error) {
	sum, err := hashSection(ctx, r, off, size)
	if err != nil {
		return nil, fmt.Errorf("upload %s part %d: hashing: %w", id, n, err)
	}
	req := c.partRequest(id, n, token, sum, func() (io.Reader, int64) {
		var rd io.Reader = io.NewSectionReader(r, off, size)
		if sent != nil {
			rd = &countingReader{r: rd, sent: sent}
		}
		return rd, size
	})
	var out PartResponse
	err = c.retry(ctx, func() error {
		_, err := c.do(ctx, req, &out)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("upload %s part %d: %w", id, n, err)
	}
	return &out, nil
}

func (c *Client) partRequest(id string, n int, token string, sum []byte, body func() (io.Reader, int64)) request {
	h := http.Header{
		"Authorization": {"Bearer " + token},
		"Content-Type":  {"application/octet-stream"},
	}
	if sum != nil {
		h.Set("X-Checksum-SHA256", hex.EncodeToString(sum))
	}
	return request{method: http.MethodPut, url: c.endpoint(nil, "upload", id, "part", strconv.Itoa(n)), header: h, newBody: body}
}

// Status reads the state of upload id. It is retried on temporary failures.
func (c *Client) Status(ctx context.Context, id string, opts StatusOptions) (*Status, error) {
	q := url.Values{}
	if !opts.IncludeParts {
		if opts.IncludeTokens {
			return nil, errors.New("status: IncludeTokens needs IncludeParts")
		}
		q.Set("include_parts", "false")
	}
	if opts.IncludeTokens {
		q.Set("include_tokens", "true")
	}
	var out Status
	if _, err := c.doJSON(ctx, http.MethodGet, c.endpoint(q, "upload", id, "status"), nil, &out); err != nil {
		return nil, fmt.Errorf("status of %s: %w", id, err)
	}
	return &out, nil
}

// Complete asks the server to deliver upload id. The answer's Status is "complete" when the
// file was delivered, or "finalizing" when the delivery still runs (poll Status). A failed
// delivery is an *APIError (502 delivery_failed, 503, 507: retried as temporary; 400
// checksum_mismatch: not retried). Calling Complete again is safe.
func (c *Client) Complete(ctx context.Context, id string) (*CompleteResponse, error) {
	var out CompleteResponse
	if _, err := c.doJSON(ctx, http.MethodPost, c.endpoint(nil, "upload", id, "complete"), nil, &out); err != nil {
		return nil, fmt.Errorf("complete %s: %w", id, err)
	}
	return &out, nil
}

// Cancel removes upload id and its staged parts from the server. It is refused (409) while
// the file is delivered and once it was delivered. It is retried on temporary failures, so a
// lost answer can turn into a 404 upload_not_found on the retry.
func (c *Client) Cancel(ctx context.Context, id string) (*CancelResponse, error) {
	var out CancelResponse
	if _, err := c.doJSON(ctx, http.MethodDelete, c.endpoint(nil, "upload", id), nil, &out); err != nil {
		return nil, fmt.Errorf("cancel %s: %w", id, err)
	}
	return &out, nil
}

// Health asks the server for its health and its storage backend's, in one attempt (it is a
// probe: no retries). A degraded server answers 503 with a health body: Health then returns
// that body together with the *APIError for the 503.
func (c *Client) Health(ctx context.Context) (*HealthResponse, error) {
	var out HealthResponse
	_, err := c.do(ctx, request{method: http.MethodGet, url: c.endpoint(nil, "health")}, &out)
	if err == nil {
		return &out, nil
	}
	if ae, ok := errors.AsType[*APIError](err); ok && ae.Status == http.StatusServiceUnavailable && ae.Code == "" {
		if json.Unmarshal(ae.body, &out) == nil && out.Status != "" {
			ae.Message = "server " + out.Status + ", storage " + out.Storage.Status
			return &out, fmt.Errorf("health: %w", err)
		}
	}
	return nil, fmt.Errorf("health: %w", err)
}

// hashSection returns the SHA-256 of the size bytes of r at off, stopping early if ctx ends.
func hashSection(ctx context.Context, r io.ReaderAt, off, size int64) ([]byte, error) {
	h := sha256.New()
	buf := make([]byte, min(size, 256<<10))
	sr := io.NewSectionReader(r, off, size)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		k, err := sr.Read(buf)
		h.Write(buf[:k])
		total += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if total != size {
		return nil, fmt.Errorf("%d bytes at offset %d: only %d could be read: %w", size, off, total, io.ErrUnexpectedEOF)
	}
	return h.Sum(nil), nil
}

// countingReader reports the bytes read through it.
type countingReader struct {
	r    io.Reader
	n    int64
	sent func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if k > 0 {
		c.n += int64(k)
		c.sent(c.n)
	}
	return k, err
}
