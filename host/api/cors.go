package api

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
)

// CORS decides which browser origins may call the API. The zero value allows none.
type CORS struct {
	any     bool
	origins map[string]bool
}

// ParseCORS parses CORS_ALLOWED_ORIGINS: "" (off), "*" (any origin), or a comma-separated list
// of exact origins, scheme://host[:port] such as https://app.example.com (a trailing / is
// dropped). A browser sends its page's exact origin and it is compared exactly, so a pattern
// can never match: an entry with a wildcard (https://*.example.com), a path, a query or
// user information is refused, as is a scheme other than http and https. List each origin.
func ParseCORS(setting string) (CORS, error) {
	c := CORS{origins: map[string]bool{}}
	for _, o := range strings.Split(setting, ",") {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
		case "*":
			c.any = true
		default:
			if err := checkOrigin(o); err != nil {
				return CORS{}, err
			}
			c.origins[o] = true
		}
	}
	return c, nil
}

// NewCORS is ParseCORS for a setting that was checked already (host/config): an entry
// ParseCORS refuses is left out (it could never match).
func NewCORS(setting string) CORS {
	c := CORS{origins: map[string]bool{}}
	for _, o := range strings.Split(setting, ",") {
		if one, err := ParseCORS(o); err == nil {
			c.any = c.any || one.any
			maps.Copy(c.origins, one.origins)
		}
	}
	return c
}

// checkOrigin reports why o is not an origin a browser could send.
func checkOrigin(o string) error {
	if strings.Contains(o, "*") {
		return fmt.Errorf("CORS_ALLOWED_ORIGINS: %q has a wildcard, which never matches: "+
			"list every origin (https://app.example.com,https://admin.example.com), or * alone for any origin", o)
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return fmt.Errorf("CORS_ALLOWED_ORIGINS: %q is not an origin such as https://app.example.com (or *)", o)
	}
	return nil
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
