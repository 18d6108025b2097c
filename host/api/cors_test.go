package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	tests := map[string]struct {
		setting, origin, method string
		preflight               bool
		wantOrigin              string
		wantStatus              int
	}{
		"off":                {"", "https://a.example", "GET", false, "", 200},
		"any":                {"*", "https://a.example", "GET", false, "*", 200},
		"listed":             {"https://a.example, https://b.example", "https://b.example", "GET", false, "https://b.example", 200},
		"not listed":         {"https://a.example", "https://evil.example", "GET", false, "", 200},
		"preflight listed":   {"https://a.example", "https://a.example", "PUT", true, "https://a.example", 204},
		"preflight unlisted": {"https://a.example", "https://evil.example", "PUT", true, "", 405},
		"preflight off":      {"", "https://a.example", "PUT", true, "", 405},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newServerWith(t, discard{}, WithCORS(NewCORS(tc.setting)))
			method := "GET"
			if tc.preflight {
				method = "OPTIONS"
			}
			req, _ := http.NewRequest(method, ts.URL+"/health", nil)
			req.Header.Set("Origin", tc.origin)
			if tc.preflight {
				req.Header.Set("Access-Control-Request-Method", tc.method)
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.wantOrigin {
				t.Fatalf("Allow-Origin %q, want %q", got, tc.wantOrigin)
			}
			if tc.preflight && tc.wantOrigin != "" {
				if resp.Header.Get("Access-Control-Allow-Headers") == "" || resp.Header.Get("Access-Control-Allow-Methods") == "" {
					t.Fatalf("preflight lacks allow headers: %v", resp.Header)
				}
			}
			if tc.wantOrigin != "" && !tc.preflight && resp.Header.Get("Access-Control-Expose-Headers") == "" {
				t.Fatal("no exposed headers")
			}
		})
	}
}

// TestParseCORS: entries that could never equal a browser's Origin header are refused, with
// the wildcard named; NewCORS leaves them out.
func TestParseCORS(t *testing.T) {
	for setting, wantErr := range map[string]string{
		"":  "",
		"*": "",
		"https://app.example.com, http://localhost:5173/": "",
		"https://[::1]:8443":                              "",
		"https://*.example.com":                           "wildcard",
		"https://app.example.com,https://*.example.com":   "wildcard",
		"*.example.com":                                   "wildcard",
		"https://app.example.com/path":                    "not an origin",
		"https://user@app.example.com":                    "not an origin",
		"ftp://app.example.com":                           "not an origin",
		"app.example.com":                                 "not an origin",
		"https://app.example.com?x=1":                     "not an origin",
	} {
		_, err := ParseCORS(setting)
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("ParseCORS(%q) = %v, want an error with %q", setting, err, wantErr)
		}
	}
	c := NewCORS("https://*.example.com, https://app.example.com")
	if c.any || len(c.origins) != 1 || !c.origins["https://app.example.com"] {
		t.Fatalf("NewCORS kept %+v", c)
	}
}
