package client

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The server's golden answers (host/api/testdata/golden, host/webhook/testdata/golden; see
// host/api/golden_test.go). The client must decode each into its type without an unknown
// field, and encode it back to the same JSON: no field lost, none renamed, none added.
var goldenDirs = []string{
	filepath.Join("..", "..", "host", "api", "testdata", "golden"),
	filepath.Join("..", "..", "host", "webhook", "testdata", "golden"),
}

// goldenType returns a new value of the client type for the golden file name.
func goldenType(name string) any {
	switch {
	case strings.HasPrefix(name, "init"):
		return new(InitResponse)
	case name == "part":
		return new(PartResponse)
	case strings.HasPrefix(name, "status"):
		return new(Status)
	case strings.HasPrefix(name, "complete"):
		return new(CompleteResponse)
	case name == "cancel":
		return new(CancelResponse)
	case strings.HasPrefix(name, "health"):
		return new(HealthResponse)
	case strings.HasPrefix(name, "error"):
		return new(ErrorBody)
	case strings.HasPrefix(name, "webhook"):
		return new(WebhookEvent)
	}
	return nil
}

func TestGoldenDecode(t *testing.T) {
	var files []string
	for _, dir := range goldenDirs {
		m, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Fatalf("found %d golden files in %v: the server's golden tests write them", len(files), goldenDirs)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v := goldenType(name)
			if v == nil {
				t.Fatalf("no client type for %s: add it to goldenType", name)
			}
			dec := json.NewDecoder(bytes.NewReader(want))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v); err != nil {
				t.Fatalf("decode into %T: %v", v, err)
			}
			var raw, got bytes.Buffer
			enc := json.NewEncoder(&raw)
			enc.SetEscapeHTML(false) // the files' placeholders: <file_id>, <time>
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			if err := json.Indent(&got, bytes.TrimSpace(raw.Bytes()), "", "  "); err != nil {
				t.Fatal(err)
			}
			got.WriteByte('\n')
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%T does not carry the answer whole:\n got: %s\nwant: %s", v, got.Bytes(), want)
			}
			if eb, ok := v.(*ErrorBody); ok {
				resp := &http.Response{StatusCode: eb.Status, Header: http.Header{}}
				ae := parseAPIError(resp, want)
				if ae.Code != eb.Code || ae.Message != eb.Error || ae.Status != eb.Status {
					t.Errorf("APIError %+v from %s", ae, want)
				}
			}
		})
	}
}
