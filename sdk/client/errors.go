package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is a non-2xx answer of the server. Code is the stable error code of docs/api.md
// ("upload_not_found", ...); it is empty when the body was not the server's JSON error (a
// proxy's error page, for example), and Message then holds the start of that body or the
// status text.
type APIError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
	// RetryAfter is the server's Retry-After, zero if it sent none.
	RetryAfter time.Duration

	body []byte // the start of the answer's body
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server answered %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

// Temporary reports whether the request may succeed if sent again: 408, 429 and every 5xx.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// UploadError is returned by Upload, UploadFile and Resume once the upload exists on the
// server. Unless the upload was cancelled or expired, Resume with FileID continues it.
type UploadError struct {
	FileID string
	Err    error
}

func (e *UploadError) Error() string { return "upload " + e.FileID + ": " + e.Err.Error() }

func (e *UploadError) Unwrap() error { return e.Err }

// DeliveryError reports that the server could not deliver the assembled file to its storage
// backend (the upload's status is "failed"). The parts stay on the server; Resume (or
// Complete) tries the delivery again.
type DeliveryError struct {
	FileID  string
	Message string // the server's finalization_error
}

func (e *DeliveryError) Error() string {
	return "delivery of " + e.FileID + " failed: " + e.Message
}

// ErrSizeMismatch is returned by Resume when the local data's size differs from the upload's
// total_size.
var ErrSizeMismatch = errors.New("size differs from the upload's total_size")

// ErrUploadExpired is returned (wrapped in *UploadError) by Resume for an upload whose status
// is "expired": it passed its expires_at unfinished and cannot be continued; start a new one.
var ErrUploadExpired = errors.New("the upload expired")

// maxErrorBody bounds how much of an error body is read.
const maxErrorBody = 64 << 10

// parseAPIError builds the *APIError for a non-2xx response with the given body.
func parseAPIError(resp *http.Response, body []byte) *APIError {
	e := &APIError{
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-Id"),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		body:       body,
	}
	var j struct {
		Error any    `json:"error"`
		Code  string `json:"code"`
	}
	if err := json.Unmarshal(body, &j); err == nil {
		e.Code = j.Code
		switch v := j.Error.(type) {
		case string:
			e.Message = v
		case map[string]any: // {"error": {"code", "message"}} from other servers
			if m, ok := v["message"].(string); ok {
				e.Message = m
			}
			if c, ok := v["code"].(string); ok && e.Code == "" {
				e.Code = c
			}
		}
	}
	if e.Message == "" && e.Code == "" {
		e.Message = snippet(body)
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// snippet is the start of a non-JSON body on one line, without control characters.
func snippet(body []byte) string {
	const max = 200
	s := strings.Join(strings.Fields(string(body)), " ")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}
