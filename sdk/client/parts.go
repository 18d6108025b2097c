package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// geometry is how an upload is cut into parts: every part is chunk bytes but the last, which
// holds the remainder.
type geometry struct {
	total, chunk int64
	parts        int
}

// newGeometry checks the server's figures against each other.
func newGeometry(total, chunk int64, parts int) (geometry, error) {
	g := geometry{total: total, chunk: chunk, parts: parts}
	switch {
	case total < 0:
		return g, fmt.Errorf("server says total_size %d", total)
	case total == 0 && parts == 0:
		return g, nil
	case chunk <= 0:
		return g, fmt.Errorf("server says chunk_size %d", chunk)
	}
	if want := (total + chunk - 1) / chunk; int64(parts) != want {
		return g, fmt.Errorf("server says %d parts, but %d bytes in chunks of %d make %d", parts, total, chunk, want)
	}
	return g, nil
}

func (g geometry) offset(n int) int64 { return int64(n) * g.chunk }

func (g geometry) size(n int) int64 { return min(g.chunk, g.total-g.offset(n)) }

// partJob is one part to send.
type partJob struct {
	n         int
	token     string
	off, size int64
}

// uploadParts sends jobs with at most workers requests at once. The first error stops the
// others; if ctx ends, its cause is returned.
func (c *Client) uploadParts(ctx context.Context, id string, r io.ReaderAt, jobs []partJob, workers int, t *tracker) error {
	if len(jobs) == 0 {
		return ctx.Err()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queue := make(chan partJob)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(workers, len(jobs)) {
		wg.Go(func() {
			for j := range queue {
				_, err := c.UploadPartAt(ctx, id, j.n, j.token, r, j.off, j.size, func(b int64) { t.sent(j.n, b) })
				if err != nil {
					mu.Lock()
					if firstErr == nil && ctx.Err() == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel(errStopped)
					continue
				}
				t.partDone(j.n, j.size)
			}
		})
	}
feed:
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errStopped) {
		return err // the caller's context ended
	}
	return firstErr
}

// errStopped cancels the other workers after one failed.
var errStopped = errors.New("stopped after another part failed")
