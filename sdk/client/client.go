package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one chunked-uploader server. It is safe for concurrent use.
type Client struct {
	base         *url.URL
	apiKey       string
	http         *http.Client
	concurrency  int
	retryPolicy  RetryPolicy
	pollInterval time.Duration

	// Replaced by tests.
	sleep   func(ctx context.Context, d time.Duration) error
	rand    func(n int64) int64
	onRetry func(attempt int, err error) // called before each wait, after a failed attempt
}

// Option configures a Client.
type Option func(*Client) error

// WithHTTPClient makes the Client send its requests with hc instead of its own http.Client
// (which has no overall timeout, waits at most 5 minutes for an answer's headers after the
// request was sent, and keeps enough idle connections for its concurrency).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		c.http = hc
		return nil
	}
}

// WithConcurrency sets how many parts Upload and Resume send at once (default 4).
func WithConcurrency(n int) Option {
	return func(c *Client) error {
		if n < 1 {
			return fmt.Errorf("WithConcurrency: %d is not a positive number", n)
		}
		c.concurrency = n
		return nil
	}
}

// WithRetry sets the retry policy; zero fields take the defaults of DefaultRetryPolicy.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error {
		c.retryPolicy = p.withDefaults()
		return nil
	}
}

// WithPollInterval sets how often the status is polled while the server delivers a file
// (default 2s).
func WithPollInterval(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("WithPollInterval: %v is not a positive duration", d)
		}
		c.pollInterval = d
		return nil
	}
}

// New returns a Client for the server at baseURL (such as "http://localhost:3000", or a URL
// with a path prefix when the API sits behind a proxy at a sub-path). apiKey is sent as
// X-API-Key on every call but part uploads and Health; it may be empty for a client that only
// uploads parts with tokens issued elsewhere.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http(s)://host[:port][/path]", baseURL)
	}
	c := &Client{
		base:         u,
		apiKey:       apiKey,
		concurrency:  4,
		retryPolicy:  DefaultRetryPolicy,
		pollInterval: 2 * time.Second,
		sleep:        sleepCtx,
		rand:         randInt63n,
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	if c.http == nil {
		c.http = &http.Client{Transport: defaultTransport(c.concurrency)}
	}
	return c, nil
}

func defaultTransport(concurrency int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = concurrency + 2
	t.ResponseHeaderTimeout = 5 * time.Minute
	t.WriteBufferSize = 256 << 10
	return t
}

// endpoint is the URL of an API path made of escaped segments.
func (c *Client) endpoint(query url.Values, segments ...string) string {
	u := *c.base
	u.RawPath = u.EscapedPath()
	for _, s := range segments {
		u.Path += "/" + s
		u.RawPath += "/" + url.PathEscape(s)
	}
	if u.RawPath == u.Path {
		u.RawPath = ""
	}
	u.RawQuery = query.Encode()
	return u.String()
}

// request describes one HTTP call: newBody is called for every attempt.
type request struct {
	method  string
	url     string
	header  http.Header
	newBody func() (io.Reader, int64) // nil: no body
	apiKey  bool
}

// do sends req once and decodes a 2xx JSON answer into out. It returns the status code; a
// non-2xx answer is an *APIError, a failure to reach the server a *netError.
func (c *Client) do(ctx context.Context, req request, out any) (int, error) {
	var body io.Reader = http.NoBody
	var length int64
	if req.newBody != nil {
		body, length = req.newBody()
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, req.url, body)
	if err != nil {
		return 0, err
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.newBody != nil {
		hr.ContentLength = length
		if length == 0 {
			hr.Body = http.NoBody
		}
	}
	if req.apiKey {
		hr.Header.Set("X-API-Key", c.apiKey)
	}
	hr.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return 0, context.Cause(ctx)
		}
		return 0, &netError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return resp.StatusCode, parseAPIError(resp, b)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		if ctx.Err() != nil {
			return 0, context.Cause(ctx)
		}
		return 0, &netError{fmt.Errorf("reading the answer: %w", err)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %d answer is not the expected JSON: %w (%q)",
				req.method, hr.URL.Path, resp.StatusCode, err, snippet(b))
		}
	}
	return resp.StatusCode, nil
}

// doJSON sends a request with an optional JSON body with retries and decodes the answer.
func (c *Client) doJSON(ctx context.Context, method, url string, in, out any) (int, error) {
	req := request{method: method, url: url, apiKey: true}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		req.header = http.Header{"Content-Type": {"application/json"}}
		req.newBody = func() (io.Reader, int64) { return bytes.NewReader(b), int64(len(b)) }
	}
	var status int
	err := c.retry(ctx, func() error {
		var err error
		status, err = c.do(ctx, req, out)
		return err
	})
	return status, err
}
