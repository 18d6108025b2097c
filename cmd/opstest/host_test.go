package opstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	port, err := harness.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// hostEnv is the configuration of a host whose data lives in dir, listening on a free port:
// secrets, staging and database in dir, CHUNK_SIZE_MB=1, JSON logs.
func hostEnv(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	return map[string]string{
		"API_KEY":            harness.APIKey,
		"JWT_SECRET":         harness.JWTSecret,
		"LOCAL_STORAGE_PATH": filepath.Join(dir, "uploads"),
		"TEMP_STORAGE_PATH":  filepath.Join(dir, "staging"),
		"DATABASE_PATH":      filepath.Join(dir, "uploads.db"),
		"SERVER_HOST":        "127.0.0.1",
		"SERVER_PORT":        strconv.Itoa(freePort(tb)),
		"CHUNK_SIZE_MB":      "1",
		"LOG_FORMAT":         "json",
	}
}

// call sends one request and decodes a JSON answer into v (when v is not nil); it fails the
// test unless the status is want.
func call(tb testing.TB, method, url string, hdr map[string]string, body io.Reader, want int, v any) {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	for k, val := range hdr {
		req.Header.Set(k, val)
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	if resp.StatusCode != want {
		tb.Fatalf("%s %s: got %d %s, want %d", method, url, resp.StatusCode, bytes.TrimSpace(b), want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			tb.Fatalf("%s %s: answer is not the expected JSON: %v: %s", method, url, err, b)
		}
	}
}

// upload sends data as filename through init, one PUT per part and complete, waits for the
// delivery if complete answered 202, and returns the final state.
func upload(tb testing.TB, base, filename string, data []byte) harness.CompleteResponse {
	tb.Helper()
	apiKey := map[string]string{"X-API-Key": harness.APIKey, "Content-Type": "application/json"}
	initBody, _ := json.Marshal(map[string]any{"filename": filename, "total_size": len(data)})
	var init harness.InitResponse
	call(tb, http.MethodPost, base+"/upload/init", apiKey, bytes.NewReader(initBody), http.StatusOK, &init)
	if init.ChunkSize <= 0 || len(init.Parts) != init.TotalParts {
		tb.Fatalf("init answered %+v", init)
	}
	chunk := int(init.ChunkSize)
	for _, p := range init.Parts {
		lo := p.Part * chunk
		hi := min(lo+chunk, len(data))
		call(tb, http.MethodPut, fmt.Sprintf("%s/upload/%s/part/%d", base, init.FileID, p.Part),
			map[string]string{"Authorization": "Bearer " + p.Token, "Content-Type": "application/octet-stream"},
			bytes.NewReader(data[lo:hi]), http.StatusOK, nil)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/upload/"+init.FileID+"/complete", nil)
	req.Header.Set("X-API-Key", harness.APIKey)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var c harness.CompleteResponse
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusAccepted: // still delivering: poll the status
		deadline := time.Now().Add(2 * time.Minute)
		for c.Status != "complete" {
			if time.Now().After(deadline) || c.Status == "failed" {
				tb.Fatalf("delivery of %s did not complete: %+v", init.FileID, c)
			}
			time.Sleep(200 * time.Millisecond)
			call(tb, http.MethodGet, base+"/upload/"+init.FileID+"/status?include_parts=false", apiKey, nil, http.StatusOK, &c)
		}
		return c
	default:
		tb.Fatalf("POST complete: got %d %s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		tb.Fatalf("complete: %v: %s", err, b)
	}
	if c.Status != "complete" {
		tb.Fatalf("complete answered %s", b)
	}
	if sum := harness.SHA256Hex(data); c.ChecksumSHA256 != nil && *c.ChecksumSHA256 != sum {
		tb.Errorf("complete: checksum_sha256 %s, want %s", *c.ChecksumSHA256, sum)
	}
	return c
}

// environ returns the environment of process pid.
func environ(tb testing.TB, pid int) []string {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}
