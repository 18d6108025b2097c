package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	var samples []string
	for _, line := range strings.Split(string(body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			samples = append(samples, line)
		}
	}
	if len(samples) < 20 {
		t.Fatalf("only %d samples scraped:\n%s", len(samples), body)
	}
	return samples
}

func sources(node string) Sources {
	return Sources{
		UploadsByState: func(context.Context) (map[string]int, error) { return map[string]int{"pending": 3}, nil },
		PluginRestarts: func() int { return 1 },
		Node:           node,
	}
}

// TestNodeLabel: with a node name every sample, ours and the Go runtime's, carries node="<name>".
func TestNodeLabel(t *testing.T) {
	m := New(sources("eu-2"))
	m.PartStarted()("", 100)
	m.Delivered(true, 100, time.Second)
	samples := scrape(t, m)
	for _, s := range samples {
		if !strings.Contains(s, `node="eu-2"`) {
			t.Errorf("sample without the node label: %s", s)
		}
	}
	for _, want := range []string{
		`chunked_uploader_bytes_received_total{node="eu-2"} 100`,
		`chunked_uploader_uploads{node="eu-2",status="pending"} 3`,
		`chunked_uploader_plugin_restarts_total{node="eu-2"} 1`,
		`chunked_uploader_deliveries_total{node="eu-2",result="ok"} 1`,
	} {
		if !contains(samples, want) {
			t.Errorf("no sample %s", want)
		}
	}
}

// TestNoNodeLabel: a single server (no NODE_ID) has the metrics it always had, unlabelled.
func TestNoNodeLabel(t *testing.T) {
	samples := scrape(t, New(sources("")))
	for _, s := range samples {
		if strings.Contains(s, `node=`) {
			t.Errorf("sample with a node label on a single server: %s", s)
		}
	}
	if !contains(samples, `chunked_uploader_uploads{status="pending"} 3`) {
		t.Errorf("no unlabelled uploads sample")
	}
}

func contains(samples []string, want string) bool {
	for _, s := range samples {
		if s == want {
			return true
		}
	}
	return false
}
