package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// UploadOptions configure Upload, UploadFile and Resume.
type UploadOptions struct {
	// Progress, if set, receives progress reports. Reports are serialised (never two at once)
	// but come from the upload's worker goroutines; the callback must return quickly. The
	// first report after init (PhaseUploading, nothing sent yet) carries the FileID, so that
	// a caller can tell the user how to resume. Bytes in flight are reported at most every
	// 100ms; every acknowledged part and every change of phase is reported.
	Progress func(Progress)
	// Concurrency overrides the client's number of parts sent at once.
	Concurrency int
	// WebhookURL is passed to init (not used by Resume).
	WebhookURL string
	// ChecksumSHA256 makes Upload read the whole file once before init to compute its SHA-256,
	// which the server then checks when it delivers the file (not used by Resume: the checksum
	// is fixed at init).
	ChecksumSHA256 bool
}

// Upload uploads size bytes of r as filename (which may carry a directory path): init, every
// part (Concurrency at a time, each hashed then sent, retried on temporary failures),
// complete, and polling the status until the file is delivered or its delivery failed.
//
// Once the upload exists on the server every error is an *UploadError with its FileID; the
// upload is left on the server (also when ctx is cancelled) so that Resume can continue it.
// A failed delivery wraps a *DeliveryError. r must not change during the upload.
func (c *Client) Upload(ctx context.Context, filename string, r io.ReaderAt, size int64, opts UploadOptions) (*Result, error) {
	t := newTracker(opts.Progress)
	var initOpts InitOptions
	initOpts.WebhookURL = opts.WebhookURL
	if opts.ChecksumSHA256 {
		sum, err := hashFile(ctx, r, size, t)
		if err != nil {
			return nil, fmt.Errorf("checksum of %q: %w", filename, err)
		}
		initOpts.ChecksumSHA256 = sum
	}
	in, err := c.Init(ctx, filename, size, initOpts)
	if err != nil {
		return nil, err
	}
	res, err := c.uploadInit(ctx, in, r, size, opts, t)
	if err != nil {
		return nil, &UploadError{FileID: in.FileID, Err: err}
	}
	return res, nil
}

func (c *Client) uploadInit(ctx context.Context, in *InitResponse, r io.ReaderAt, size int64, opts UploadOptions, t *tracker) (*Result, error) {
	g, err := newGeometry(size, in.ChunkSize, in.TotalParts)
	if err != nil {
		return nil, err
	}
	jobs := make([]partJob, 0, len(in.Parts))
	for _, p := range in.Parts {
		if p.Part < 0 || p.Part >= g.parts {
			return nil, fmt.Errorf("init listed part %d of %d", p.Part, g.parts)
		}
		jobs = append(jobs, partJob{n: p.Part, token: p.Token, off: g.offset(p.Part), size: g.size(p.Part)})
	}
	t.update(func(p *Progress) {
		*p = Progress{FileID: in.FileID, Phase: PhaseUploading, TotalBytes: size, TotalParts: g.parts}
	})
	if err := c.uploadParts(ctx, in.FileID, r, jobs, c.workers(opts), t); err != nil {
		return nil, err
	}
	return c.finish(ctx, in.FileID, t)
}

// UploadFile uploads the regular file at path as remoteName (path's base name if empty). See
// Upload.
func (c *Client) UploadFile(ctx context.Context, path, remoteName string, opts UploadOptions) (*Result, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if remoteName == "" {
		remoteName = filepath.Base(path)
	}
	return c.Upload(ctx, remoteName, f, size, opts)
}

// ResumeFile resumes upload id with the regular file at path. See Resume.
func (c *Client) ResumeFile(ctx context.Context, id, path string, opts UploadOptions) (*Result, error) {
	f, size, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return c.Resume(ctx, id, f, size, opts)
}

func openRegular(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	return f, fi.Size(), nil
}

func (c *Client) workers(opts UploadOptions) int {
	if opts.Concurrency > 0 {
		return opts.Concurrency
	}
	return c.concurrency
}

// hashFile computes the hex SHA-256 of size bytes of r, reporting PhaseHashing progress.
func hashFile(ctx context.Context, r io.ReaderAt, size int64, t *tracker) (string, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	t.update(func(p *Progress) { *p = Progress{Phase: PhaseHashing, TotalBytes: size} })
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return "", context.Cause(ctx)
		}
		k, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		h.Write(buf[:k])
		off += int64(k)
		if err != nil && !(err == io.EOF && off == size) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		t.mu.Lock()
		t.p.BytesHashed = off
		if off == size || time.Since(t.last) >= progressInterval {
			t.report()
		}
		t.mu.Unlock()
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
