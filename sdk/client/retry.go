package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// RetryPolicy says how often and how long to wait before a retryable request is sent again.
// The wait before retry k (k = 1, 2, ...) is a uniformly random duration in
// [0, min(MaxDelay, BaseDelay·2^(k-1))) ("full jitter"), or the server's Retry-After when it
// sent one, capped at MaxDelay.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts of one request, including the first (1: no
	// retries). Default 5.
	MaxAttempts int
	// BaseDelay is the backoff of the first retry. Default 500ms.
	BaseDelay time.Duration
	// MaxDelay caps every wait, Retry-After included. Default 30s.
	MaxDelay time.Duration
}

// DefaultRetryPolicy is the policy of a Client created without WithRetry.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 5, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second}

// withDefaults fills the zero fields from DefaultRetryPolicy.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultRetryPolicy.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	return p
}

// delay is the wait before retry number retry (from 1) after err.
func (p RetryPolicy) delay(retry int, err error, rnd func(n int64) int64) time.Duration {
	if ae, ok := errors.AsType[*APIError](err); ok && ae.RetryAfter > 0 {
		return min(ae.RetryAfter, p.MaxDelay)
	}
	ceiling := p.MaxDelay
	if shift := retry - 1; shift < 62 && p.BaseDelay<<shift > 0 && p.BaseDelay<<shift < ceiling {
		ceiling = p.BaseDelay << shift
	}
	return time.Duration(rnd(int64(ceiling)))
}

// retryable reports whether a failed attempt may be sent again: a network error (not the
// caller's cancellation) or an *APIError with status 408, 429 or 5xx.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if ae, ok := errors.AsType[*APIError](err); ok {
		return ae.Temporary()
	}
	var ne *netError
	return errors.As(err, &ne)
}

// netError marks a failure to talk to the server (connection refused or reset, a timeout,
// a truncated answer): the request may or may not have reached it.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// retry runs attempt until it succeeds, fails with a non-retryable error, MaxAttempts
// attempts were made, or ctx is done. It returns the last error.
func (c *Client) retry(ctx context.Context, attempt func() error) error {
	var err error
	for n := 1; ; n++ {
		if err = attempt(); err == nil || !retryable(ctx, err) {
			return err
		}
		if n >= c.retryPolicy.MaxAttempts {
			if n > 1 {
				err = fmt.Errorf("%w (gave up after %d attempts)", err, n)
			}
			return err
		}
		if c.onRetry != nil {
			c.onRetry(n, err)
		}
		if werr := c.sleep(ctx, c.retryPolicy.delay(n, err, c.rand)); werr != nil {
			return werr
		}
	}
}

// sleepCtx waits for d or until ctx is done, whichever is first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// randInt63n is the default source of jitter: a uniform value in [0, n), 0 if n <= 0.
func randInt63n(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date. It returns 0
// when the header is absent, malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
