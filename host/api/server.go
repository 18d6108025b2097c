// Package api is the HTTP layer: routes, authentication of requests, JSON in and out, and
// the mapping of error codes to HTTP statuses (errors.go). The rules live in package upload.
package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/metrics"
	"github.com/chunked-uploader/chunked-uploader/host/tus"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/host/webhook"
)

// Server serves the HTTP API.
type Server struct {
	svc      *upload.Service
	key      *auth.APIKey
	tokens   *auth.Tokens
	log      hclog.Logger
	cors     CORS
	metrics  *metrics.Metrics
	router   *httprouter.Router
	cluster  cluster         // cluster.go
	idle     time.Duration   // BODY_IDLE_TIMEOUT
	webhooks *webhook.Policy // which webhook_url targets init accepts
	tus      *tus.Handler
}

// WithTus serves the tus endpoint h at /files/.
func WithTus(h *tus.Handler) Option { return func(s *Server) { s.tus = h } }

// WithBodyIdleTimeout sets how long a request body may send nothing before the connection
// is closed (default DefaultBodyIdleTimeout).
func WithBodyIdleTimeout(d time.Duration) Option { return func(s *Server) { s.idle = d } }

// WithWebhookPolicy sets which webhook_url targets init accepts (default: public
// addresses only).
func WithWebhookPolicy(p *webhook.Policy) Option { return func(s *Server) { s.webhooks = p } }

// WithMetrics records request metrics in m and serves them at GET /metrics.
func WithMetrics(m *metrics.Metrics) Option { return func(s *Server) { s.metrics = m } }

// Option configures a Server.
type Option func(*Server)

// WithCORS allows browser origins (see NewCORS).
func WithCORS(c CORS) Option { return func(s *Server) { s.cors = c } }

// New returns the API server.
func New(svc *upload.Service, key *auth.APIKey, tokens *auth.Tokens, log hclog.Logger, opts ...Option) *Server {
	s := &Server{svc: svc, key: key, tokens: tokens, log: log, idle: DefaultBodyIdleTimeout}
	for _, o := range opts {
		o(s)
	}
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.HandleOPTIONS = false
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.writeError(w, req, host.Errorf(host.CodeRouteNotFound, "no route %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// httprouter lists OPTIONS, which this API does not serve.
		var allow []string
		for _, m := range strings.Split(w.Header().Get("Allow"), ", ") {
			if m != http.MethodOptions && m != "" {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, req, host.Errorf(host.CodeMethodNotAllowed, "method %s is not allowed on %s (allowed: %s)",
			req.Method, req.URL.Path, strings.Join(allow, ", ")))
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.writeError(w, req, fmt.Errorf("panic: %v", v))
	}
	// httprouter 1.3 cannot hold the static /upload/init beside the wildcard /upload/:id,
	// so POST /upload/:id dispatches on the segment.
	r.POST("/upload/:id", s.handleUploadPost)
	r.PUT("/upload/:id/part/:n", s.owned(s.handlePart))
	r.GET("/upload/:id/status", s.owned(s.withAPIKey(s.handleStatus)))
	r.POST("/upload/:id/complete", s.owned(s.withAPIKey(s.handleComplete)))
	r.DELETE("/upload/:id", s.owned(s.withAPIKey(s.handleCancel)))
	r.GET("/health", s.handleHealth)
	if s.tus != nil {
		s.tus.Register(r, tus.Hooks{WriteError: s.writeError, Accepting: s.accepting, Serves: s.serves})
	}
	if s.metrics != nil {
		r.Handler(http.MethodGet, "/metrics", s.metrics.Handler())
	}
	s.router = r
	return s
}

// MaxHeaderBytes is the most request header bytes (with the request line) the API takes;
// larger requests get a JSON 431. The http.Server's own, plain-text limit must be higher
// (ServerMaxHeaderBytes) for this answer to be given.
const (
	MaxHeaderBytes       = 64 << 10
	ServerMaxHeaderBytes = 1 << 20
)

// headerBytes estimates the size of r's request line and headers.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + 12
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

type ctxKey int

const requestIDKey ctxKey = 0

// ServeHTTP implements http.Handler: it tags the request with an id, bounds the wait for
// its body and routes it. An answer given while the body may still hold unread bytes, and
// every answer to a request with Transfer-Encoding, closes the connection: Go would
// otherwise drain the body with no deadline before the next request (a slowloris), and a
// chunked request may also have carried a Content-Length that Go dropped (RFC 9112 6.1:
// close after answering).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if !safeRequestID(id) {
		var b [8]byte
		rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	h := w.Header()
	h.Set("X-Request-Id", id)
	h.Set("X-Content-Type-Options", "nosniff")
	// Handlers get a copy whose body is watched; the server keeps the original request,
	// whose body type tells it how to close the connection.
	r = r.WithContext(contextWithRequestID(r.Context(), id))
	sw := &statusWriter{ResponseWriter: w, req: r, body: watchBody(w, r, s.idle)}
	defer sw.finish()
	if s.cors.handle(sw, r) {
		return
	}
	if n := headerBytes(r); n > MaxHeaderBytes {
		sw.Header().Set("Connection", "close")
		s.writeError(sw, r, host.Errorf(host.CodeHeadersTooLarge, "request headers are %d bytes, at most %d allowed", n, MaxHeaderBytes))
		return
	}
	start := time.Now()
	s.router.ServeHTTP(sw, r)
	s.log.Debug("request", "request_id", id, "method", r.Method, "path", r.URL.Path, "status", sw.status,
		"ms", time.Since(start).Milliseconds())
}

// safeRequestID reports whether a client's X-Request-Id may be logged and echoed:
// 1 to 64 of A-Z a-z 0-9 . _ -.
func safeRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// statusWriter records the status and decides, when the header goes out, whether the
// connection must close.
type statusWriter struct {
	http.ResponseWriter
	req    *http.Request
	body   *idleBody // nil: no body
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		if w.body.unread() || len(w.req.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// finish runs when the handler is done. A handler that wrote nothing gets Go's own 200,
// which must close too. After the answer Go still reads what is left of an unread body, up
// to 256 KiB, before it closes: a client that is sending it finishes within drainGrace
// and gets a clean close (closing on unread bytes resets the connection, which may destroy
// the answer); one that sends nothing is cut then.
func (w *statusWriter) finish() {
	unread := w.body.unread()
	if w.status == 0 && (unread || len(w.req.TransferEncoding) > 0) {
		w.Header().Set("Connection", "close")
	}
	if unread {
		_ = w.body.rc.SetReadDeadline(time.Now().Add(min(drainGrace, w.body.idle)))
	}
}

// drainGrace bounds the reading of an unread body's rest after the answer.
const drainGrace = time.Second

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) handleUploadPost(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if ps.ByName("id") != "init" {
		w.Header().Set("Allow", "DELETE")
		s.writeError(w, r, host.Errorf(host.CodeMethodNotAllowed, "method POST is not allowed on %s (allowed: DELETE)", r.URL.Path))
		return
	}
	s.withAPIKey(s.accepting(s.handleInit))(w, r, ps)
}

func (s *Server) withAPIKey(h httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if err := s.key.Check(r.Header.Get("X-API-Key")); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r, ps)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
