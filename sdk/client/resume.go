package client

import (
	"context"
	"fmt"
	"io"
)

// Resume continues upload id with the size bytes of r, which must be the same data the upload
// was started with. It reads the status with include_tokens=true, so it needs nothing from
// the process that started the upload; takes the part geometry from the server (chunk_size,
// total_parts, total_size: a size that differs is ErrSizeMismatch); sends only the pending
// parts; then completes the upload as Upload does. An upload that is already delivered
// returns its Result; one being delivered is waited for; one whose delivery failed is
// delivered again; an expired one is ErrUploadExpired.
//
// Errors after the status was read are *UploadError. opts.WebhookURL and
// opts.ChecksumSHA256 are not used: they were fixed at init.
func (c *Client) Resume(ctx context.Context, id string, r io.ReaderAt, size int64, opts UploadOptions) (*Result, error) {
	st, err := c.Status(ctx, id, StatusOptions{IncludeParts: true, IncludeTokens: true})
	if err != nil {
		return nil, err
	}
	res, err := c.resume(ctx, st, r, size, opts)
	if err != nil {
		return nil, &UploadError{FileID: id, Err: err}
	}
	return res, nil
}

func (c *Client) resume(ctx context.Context, st *Status, r io.ReaderAt, size int64, opts UploadOptions) (*Result, error) {
	t := newTracker(opts.Progress)
	if st.Status == StatusComplete {
		t.update(func(p *Progress) {
			*p = Progress{FileID: st.FileID, Phase: PhaseComplete, BytesUploaded: st.TotalSize, ResumedBytes: st.TotalSize,
				TotalBytes: st.TotalSize, PartsDone: st.TotalParts, TotalParts: st.TotalParts, DeliveryPercent: 100}
		})
		return resultFromStatus(st), nil
	}
	if st.Status == StatusExpired {
		return nil, fmt.Errorf("%w at %s: its staged parts are gone", ErrUploadExpired, st.ExpiresAt)
	}
	if size != st.TotalSize {
		return nil, fmt.Errorf("%w: local data has %d bytes, the upload %d", ErrSizeMismatch, size, st.TotalSize)
	}
	g, err := newGeometry(st.TotalSize, st.ChunkSize, st.TotalParts)
	if err != nil {
		return nil, err
	}
	if len(st.Parts) != g.parts {
		return nil, fmt.Errorf("status listed %d parts of %d", len(st.Parts), g.parts)
	}
	var jobs []partJob
	var done int
	var doneBytes int64
	for _, p := range st.Parts {
		if p.Part < 0 || p.Part >= g.parts {
			return nil, fmt.Errorf("status listed part %d of %d", p.Part, g.parts)
		}
		if p.Status != PartPending {
			done++
			doneBytes += g.size(p.Part)
			continue
		}
		if st.Status != StatusFinalizing && p.Token == "" {
			return nil, fmt.Errorf("the server gave no token for pending part %d (upload %s; expired?)", p.Part, st.Status)
		}
		jobs = append(jobs, partJob{n: p.Part, token: p.Token, off: g.offset(p.Part), size: g.size(p.Part)})
	}
	t.update(func(p *Progress) {
		*p = Progress{FileID: st.FileID, Phase: PhaseUploading, BytesUploaded: doneBytes, ResumedBytes: doneBytes,
			TotalBytes: size, PartsDone: done, TotalParts: g.parts}
	})
	if err := c.uploadParts(ctx, st.FileID, r, jobs, c.workers(opts), t); err != nil {
		return nil, err
	}
	return c.finish(ctx, st.FileID, t)
}

func resultFromStatus(st *Status) *Result {
	return &Result{
		FileID: st.FileID, Filename: st.Filename, FinalPath: deref(st.FinalPath),
		ChecksumSHA256: deref(st.ChecksumSHA256), StorageBackend: st.StorageBackend, TotalSize: st.TotalSize,
	}
}
