package client

import (
	"context"
	"fmt"
)

// finish completes upload id and waits until the file is delivered: Complete (retried on
// temporary failures such as 502 delivery_failed and 503), then, while the answer is
// "finalizing", the status every poll interval until it is "complete" or "failed".
func (c *Client) finish(ctx context.Context, id string, t *tracker) (*Result, error) {
	t.update(func(p *Progress) { p.Phase, p.DeliveryPercent = PhaseFinalizing, 0 })
	cr, err := c.Complete(ctx, id)
	if err != nil {
		return nil, err
	}
	if cr.Status == StatusComplete {
		return c.completed(t, &Result{
			FileID: cr.FileID, Filename: cr.Filename, FinalPath: deref(cr.FinalPath),
			ChecksumSHA256: deref(cr.ChecksumSHA256), StorageBackend: cr.StorageBackend, TotalSize: cr.TotalSize,
		}), nil
	}
	t.update(func(p *Progress) { p.DeliveryPercent = cr.FinalizingProgressPercent })
	for {
		if err := c.sleep(ctx, c.pollInterval); err != nil {
			return nil, err
		}
		st, err := c.Status(ctx, id, StatusOptions{})
		if err != nil {
			return nil, err
		}
		switch st.Status {
		case StatusComplete:
			return c.completed(t, resultFromStatus(st)), nil
		case StatusFailed:
			return nil, &DeliveryError{FileID: id, Message: deref(st.FinalizationError)}
		case StatusExpired:
			return nil, fmt.Errorf("%w while waiting for the delivery", ErrUploadExpired)
		case StatusFinalizing:
			t.update(func(p *Progress) { p.DeliveryPercent = st.FinalizingProgressPercent })
		default:
			return nil, fmt.Errorf("status %q while waiting for the delivery", st.Status)
		}
	}
}

func (c *Client) completed(t *tracker, r *Result) *Result {
	t.update(func(p *Progress) { p.Phase, p.DeliveryPercent = PhaseComplete, 100 })
	return r
}
