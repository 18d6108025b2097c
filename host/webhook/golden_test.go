package webhook_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/webhook"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from NewEvent's bodies")

var eventIDRE = regexp.MustCompile(`"evt_[0-9a-f]{32}"`)

// TestGoldenEvents pins the webhook bodies (their bytes are signed, so their field order
// matters too): sdk/client decodes the same files into its WebhookEvent.
func TestGoldenEvents(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	u := &host.Upload{
		ID: "0b6f2c1e-4a7d-4f3b-9c5e-2d8a1f0e7b6c", Filename: "movie.mp4", Path: "videos/2024", TotalSize: 1048586,
		StorageBackend: "local", WebhookURL: "https://hooks.example.com/uploads",
		FinalPath:       "/data/videos/2024/0b6f2c1e-4a7d-4f3b-9c5e-2d8a1f0e7b6c_movie.mp4",
		DeliveredSHA256: "17f06f784028e80cf9e95369111c539ab7a7fe6e818bc336b2d5f68cd404c03a",
	}
	for name, ev := range map[string]*host.WebhookEvent{
		"webhook_complete": webhook.NewEvent(host.EventUploadComplete, u, at, ""),
		"webhook_failed":   webhook.NewEvent(host.EventUploadFailed, u, at, "the storage backend refused access (credentials or permissions)"),
	} {
		if !eventIDRE.Match(ev.Body) || !bytes.Contains(ev.Body, []byte(`"`+ev.ID+`"`)) {
			t.Fatalf("%s: no event_id %s in %s", name, ev.ID, ev.Body)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, eventIDRE.ReplaceAll(ev.Body, []byte(`"<event_id>"`)), "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteByte('\n')
		path := filepath.Join("testdata", "golden", name+".json")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("%s differs from %s:\n got: %s\nwant: %s", name, path, out.Bytes(), want)
		}
	}
}
