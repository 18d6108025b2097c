package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAPIErrorFromBody(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		status      int
		contentType string
		body        string
		wantCode    string
		wantMessage string
	}{
		"server JSON":   {404, "application/json", `{"error":"no such upload","code":"upload_not_found","status":404}`, "upload_not_found", "no such upload"},
		"nested JSON":   {400, "application/json", `{"error":{"code":"bad","message":"nested"}}`, "bad", "nested"},
		"proxy HTML":    {502, "text/html", "<html>\n<body>Bad   Gateway</body></html>", "", "<html> <body>Bad Gateway</body></html>"},
		"empty body":    {503, "text/plain", "", "", "Service Unavailable"},
		"JSON, no code": {500, "application/json", `{"message":"x"}`, "", `{"message":"x"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.Header().Set("X-Request-Id", "rid-9")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			c, err := New(srv.URL, "k", WithRetry(RetryPolicy{MaxAttempts: 1}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Cancel(t.Context(), "id")
			ae, ok := errors.AsType[*APIError](err)
			if !ok {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.Status != tc.status || ae.Code != tc.wantCode || ae.Message != tc.wantMessage || ae.RequestID != "rid-9" {
				t.Errorf("got %+v, want status %d code %q message %q request id rid-9", ae, tc.status, tc.wantCode, tc.wantMessage)
			}
		})
	}
}

// TestRequests checks the method, path, query, headers and body of each typed call.
func TestRequests(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, uri, apiKey, auth, contentType, checksum string
		length                                           int64
		body                                             string
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.RequestURI(), r.Header.Get("X-API-Key"), r.Header.Get("Authorization"),
			r.Header.Get("Content-Type"), r.Header.Get("X-Checksum-SHA256"), r.ContentLength, string(b)}
		reply(w, 200, map[string]any{"file_id": "f", "total_parts": 0, "parts": []any{}, "status": "ok"})
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL+"/api/", "secret-key")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	sum := sha256.Sum256([]byte("hello"))
	tests := map[string]struct {
		call func() error
		want seen
	}{
		"init": {func() error {
			_, err := c.Init(ctx, "videos/a b.bin", 5, InitOptions{WebhookURL: "https://h/x"})
			return err
		}, seen{"POST", "/api/upload/init", "secret-key", "", "application/json", "", 72,
			`{"filename":"videos/a b.bin","total_size":5,"webhook_url":"https://h/x"}`}},
		"part at": {func() error {
			_, err := c.UploadPartAt(ctx, "id/1", 3, "tok", strings.NewReader("xxhello"), 2, 5, nil)
			return err
		}, seen{"PUT", "/api/upload/id%2F1/part/3", "", "Bearer tok", "application/octet-stream", hex.EncodeToString(sum[:]), 5, "hello"}},
		"part": {func() error {
			_, err := c.UploadPart(ctx, "id", 0, "tok", strings.NewReader("hi"), 2)
			return err
		}, seen{"PUT", "/api/upload/id/part/0", "", "Bearer tok", "application/octet-stream", "", 2, "hi"}},
		"status default": {func() error {
			_, err := c.Status(ctx, "id", StatusOptions{})
			return err
		}, seen{"GET", "/api/upload/id/status?include_parts=false", "secret-key", "", "", "", 0, ""}},
		"status tokens": {func() error {
			_, err := c.Status(ctx, "id", StatusOptions{IncludeParts: true, IncludeTokens: true})
			return err
		}, seen{"GET", "/api/upload/id/status?include_tokens=true", "secret-key", "", "", "", 0, ""}},
		"complete": {func() error {
			_, err := c.Complete(ctx, "id")
			return err
		}, seen{"POST", "/api/upload/id/complete", "secret-key", "", "", "", 0, ""}},
		"cancel": {func() error {
			_, err := c.Cancel(ctx, "id")
			return err
		}, seen{"DELETE", "/api/upload/id", "secret-key", "", "", "", 0, ""}},
		"health": {func() error {
			_, err := c.Health(ctx)
			return err
		}, seen{"GET", "/api/health", "", "", "", "", 0, ""}},
	}
	for name, tc := range tests { // sequential: got is shared
		if err := tc.call(); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, tc.want)
		}
	}
}

func TestHealthDegraded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reply(w, 503, map[string]any{"status": "degraded", "storage": map[string]any{"backend_type": "s3", "status": "unavailable"}})
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(t.Context())
	if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != 503 {
		t.Fatalf("err = %v, want a 503 *APIError", err)
	}
	if h == nil || h.Status != "degraded" || h.Storage.BackendType != "s3" || h.Storage.Status != "unavailable" {
		t.Errorf("health = %+v, want the degraded body", h)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		url  string
		opts []Option
	}{
		"no scheme":        {"localhost:3000", nil},
		"ftp":              {"ftp://h", nil},
		"no host":          {"http://", nil},
		"zero concurrency": {"http://h", []Option{WithConcurrency(0)}},
		"nil http client":  {"http://h", []Option{WithHTTPClient(nil)}},
		"zero poll":        {"http://h", []Option{WithPollInterval(0)}},
	}
	for name, tc := range tests {
		if _, err := New(tc.url, "k", tc.opts...); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

func TestInitRejectsMalformedAnswer(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"file_id": "f", "total_parts": 2, "parts": []any{}})
	}))
	t.Cleanup(srv.Close)
	c, _ := New(srv.URL, "k")
	if _, err := c.Init(t.Context(), "a", 10, InitOptions{}); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("err = %v, want a malformed answer error", err)
	}
}
