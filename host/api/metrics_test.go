package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/host/metrics"
)

// TestMetrics scrapes /metrics after an upload and a refused part.
func TestMetrics(t *testing.T) {
	m := metrics.New(metrics.Sources{
		UploadsByState: func(context.Context) (map[string]int, error) { return map[string]int{"complete": 1}, nil },
		PluginRestarts: func() int { return 2 },
	})
	ts := newServerMetrics(t, discard{}, m, WithMetrics(m))
	up := initUpload(t, ts, `{"filename":"m.bin","total_size":1048586}`)
	id := up["file_id"].(string)
	parts := up["parts"].([]any)
	bearer := func(n int) map[string]string {
		return map[string]string{"Authorization": "Bearer " + parts[n].(map[string]any)["token"].(string)}
	}
	if st, m, _ := do(t, ts, call{"PUT", "/upload/" + id + "/part/0", bearer(0), "short"}); st != 400 {
		t.Fatalf("short part: %d %v", st, m)
	}
	do(t, ts, call{"PUT", "/upload/" + id + "/part/0", bearer(0), strings.Repeat("a", chunk)})
	do(t, ts, call{"PUT", "/upload/" + id + "/part/1", bearer(1), strings.Repeat("b", 10)})
	if st, m, _ := do(t, ts, call{"POST", "/upload/" + id + "/complete", key(), ""}); st != 200 {
		t.Fatalf("complete: %d %v", st, m)
	}
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		"chunked_uploader_bytes_received_total 1.048586e+06",
		"chunked_uploader_part_upload_duration_seconds_count 2",
		`chunked_uploader_parts_rejected_total{code="part_size_mismatch"} 1`,
		"chunked_uploader_parts_in_flight 0",
		`chunked_uploader_deliveries_total{result="ok"} 1`,
		"chunked_uploader_delivery_duration_seconds_count 1",
		"chunked_uploader_bytes_delivered_total 1.048586e+06",
		`chunked_uploader_uploads{status="complete"} 1`,
		"chunked_uploader_plugin_restarts_total 2",
		`chunked_uploader_webhook_attempts_total{result="delivered"} 0`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(text, want+"\n") && !strings.Contains(text, want+" ") {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}
