package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed seed_client.py
var seedClient []byte

// clientResult is one upload by a real client to a host with the default settings (complete
// waits COMPLETE_WAIT_SECONDS, 20 s, for the delivery, then answers 202).
type clientResult struct {
	Backend        string     `json:"backend"`
	Client         string     `json:"client"`
	FileID         string     `json:"file_id"`
	CompleteStatus int        `json:"complete_status"`         // as the host's request log has it
	AfterLastPart  float64    `json:"after_last_part_seconds"` // host log: last part's 200 to complete's answer
	TotalSeconds   float64    `json:"total_seconds"`           // the client process, start to exit
	FinalPath      string     `json:"final_path"`              // as the client printed it
	LoadStart      [3]float64 `json:"load_average_start"`
	LoadEnd        [3]float64 `json:"load_average_end"`
	Error          string     `json:"error,omitempty"`
}

// runClients uploads a file of the benchmark's size with the seed's Python example and with
// bin/chunked-upload to a host on each backend, and checks that complete answered 200 with
// final_path and that the object is there.
func (b *bench) runClients(ctx context.Context) error {
	dir := filepath.Join(b.work, "clients")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !b.keep {
		defer os.RemoveAll(dir)
	}
	script := filepath.Join(dir, "seed_client.py")
	if err := os.WriteFile(script, seedClient, 0o644); err != nil {
		return err
	}
	file := filepath.Join(dir, "big.bin")
	logf("clients: writing a file of %d MiB", b.size>>20)
	if err := writeFile(file, b.data, b.size); err != nil {
		return err
	}
	var errs []error
	for _, name := range b.backends {
		name = strings.TrimSpace(name)
		be, err := b.open(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, client := range []string{"seed Python example", "bin/chunked-upload"} {
			logf("clients: %s on %s", client, name)
			var args []string
			if client == "bin/chunked-upload" {
				args = []string{filepath.Join(b.bin, "chunked-upload"), "upload", file, "--json", "--quiet"}
			} else {
				args = []string{"python3", script}
			}
			r, err := b.client(ctx, be, client, args, file)
			if r == nil {
				r = &clientResult{Backend: name, Client: client}
			}
			if err != nil {
				r.Error = err.Error()
				errs = append(errs, fmt.Errorf("%s on %s: %w", client, name, err))
			}
			b.res.Clients = append(b.res.Clients, r)
		}
		be.close(context.WithoutCancel(ctx))
	}
	return errors.Join(errs...)
}

// writeFile writes size bytes (data repeated) to name and syncs it.
func writeFile(name string, data []byte, size int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	for left := size; left > 0; left -= int64(len(data)) {
		if _, err := f.Write(data[:min(int64(len(data)), left)]); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// client runs one client (args) against a fresh host on be.
func (b *bench) client(ctx context.Context, be backend, label string, args []string, file string) (*clientResult, error) {
	b.runs++
	env := be.hostEnv()
	env["LOG_LEVEL"] = "debug" // the request log: status and end of every request
	h, err := startHost(b.bin, b.bin, filepath.Join(b.work, fmt.Sprintf("host-%d-%s-client", b.runs, be.name())), env, b.hostEnv)
	if err != nil {
		return nil, err
	}
	defer h.stop()
	b.fresh()
	r := &clientResult{Backend: be.name(), Client: label, LoadStart: loadAvg()}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "API_KEY="+apiKey, "BASE_URL="+h.url, "CHUNKED_UPLOADER_URL="+h.url, "FILE_PATH="+file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	r.TotalSeconds = time.Since(start).Seconds()
	r.LoadEnd = loadAvg()
	if err != nil {
		return r, fmt.Errorf("%v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), tail(stderr.Bytes()))
	}
	var out struct {
		FileID         string  `json:"file_id"`
		FinalPath      *string `json:"final_path"`
		CompleteStatus int     `json:"complete_status"` // the Python example's report only
	}
	// chunked-upload --json prints one JSON document; the Python example's is its last line.
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	if json.Unmarshal(stdout.Bytes(), &out) != nil {
		if err := json.Unmarshal(lines[len(lines)-1], &out); err != nil {
			return r, fmt.Errorf("the client's output %q: %w", stdout.Bytes(), err)
		}
	}
	r.FileID = out.FileID
	if out.FinalPath != nil {
		r.FinalPath = *out.FinalPath
	}
	lastPart, completed, code, err := requestTimes(h.logPath, out.FileID)
	if err != nil {
		return r, err
	}
	r.CompleteStatus, r.AfterLastPart = code, completed.Sub(lastPart).Seconds()
	if out.CompleteStatus != 0 && out.CompleteStatus != code {
		return r, fmt.Errorf("the client saw complete answer %d, the host log says %d", out.CompleteStatus, code)
	}
	if r.CompleteStatus != 200 || r.FinalPath == "" {
		return r, fmt.Errorf("complete answered %d, final_path %q: want 200 and a path", r.CompleteStatus, r.FinalPath)
	}
	if err := be.verify(ctx, r.FinalPath, b.size); err != nil {
		return r, fmt.Errorf("the delivered object: %w", err)
	}
	return r, nil
}

func tail(b []byte) []byte {
	if len(b) > 4<<10 {
		return b[len(b)-4<<10:]
	}
	return b
}

// requestTimes reads the host's request log (LOG_LEVEL=debug) and returns when the last 200
// to a part of upload id was logged, when the first answer to its complete was, and that
// answer's status.
func requestTimes(logPath, id string) (lastPart, complete time.Time, code int, err error) {
	f, err := os.Open(logPath)
	if err != nil {
		return lastPart, complete, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Message string  `json:"@message"`
			Time    string  `json:"@timestamp"`
			Method  string  `json:"method"`
			Path    string  `json:"path"`
			Status  int     `json:"status"`
			MS      float64 `json:"ms"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Message != "request" || !strings.HasPrefix(e.Path, "/upload/"+id+"/") {
			continue
		}
		at, perr := parseLogTime(e.Time)
		if perr != nil {
			return lastPart, complete, 0, perr
		}
		switch {
		case e.Method == "PUT" && strings.Contains(e.Path, "/part/") && e.Status == 200 && at.After(lastPart):
			lastPart = at
		case e.Method == "POST" && strings.HasSuffix(e.Path, "/complete") && complete.IsZero():
			complete, code = at, e.Status
		}
	}
	if err := sc.Err(); err != nil {
		return lastPart, complete, 0, err
	}
	if lastPart.IsZero() || complete.IsZero() {
		return lastPart, complete, 0, fmt.Errorf("%s: no request log of the parts and complete of %s (LOG_LEVEL=debug?)", logPath, id)
	}
	return lastPart, complete, code, nil
}

func parseLogTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.000000Z07:00", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("log time %q", s)
}
