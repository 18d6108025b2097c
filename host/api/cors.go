package api

import (
	"net/http"
	"strings"
)

// CORS decides which browser origins may call the API. The zero value allows none.
type CORS struct {
	any     bool
	origins map[string]bool
}

// NewCORS parses CORS_ALLOWED_ORIGINS: "" (off), "*" (any origin), or a comma-separated list
// of exact origins such as https://app.example.com.
func NewCORS(setting string) CORS {
	c := CORS{origins: map[string]bool{}}
	for _, o := range strings.Split(setting, ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			c.any = true
		default:
			c.origins[o] = true
		}
	}
	return c
}

func (c CORS) enabled() bool { return c.any || len(c.origins) > 0 }

// Headers and methods a browser client uses.
const (
	corsAllowMethods = "GET, POST, PUT, DELETE, HEAD, PATCH"
	corsAllowHeaders = "Authorization, Content-Type, X-API-Key, Content-Digest, X-Checksum-SHA256, X-Request-Id, " +
		// tus clients (host/tus)
		"Tus-Resumable, Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum, Upload-Defer-Length, Upload-Concat, X-HTTP-Method-Override"
	corsExposeHeaders = "X-Request-Id, Retry-After, Content-Length, " +
		"Location, Upload-Offset, Upload-Length, Upload-Metadata, Upload-Expires, " +
		"Tus-Resumable, Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm"
	corsMaxAge = "600"
)

// handle sets the CORS response headers for an allowed origin and answers preflight
// requests. It reports whether the request was fully answered.
func (c CORS) handle(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if !c.enabled() || origin == "" {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !c.any && !c.origins[origin] {
		return false // no CORS headers: the browser refuses the answer
	}
	if c.any {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}
