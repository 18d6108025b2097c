package upload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// logBuffer collects log lines, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// errorLines returns the lines logged at error level.
func (l *logBuffer) errorLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, "[ERROR]") {
			out = append(out, line)
		}
	}
	return out
}

// A failed delivery is reported once: to the Complete call waiting for it, which returns it
// (and the API logs the request that failed), or, when nobody waits, in the log. The old
// code logged it and returned it, so one failure gave two error lines.
func TestFailedDeliveryReportedOnce(t *testing.T) {
	for name, wait := range map[string]bool{"complete waits": true, "nobody waits": false} {
		t.Run(name, func(t *testing.T) {
			logs := &logBuffer{}
			e := newEnv(t, func(o *Options) {
				o.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logs})
				if !wait {
					o.CompleteWait = 0
				}
			})
			e.backend.fail = func(int) error { return fmt.Errorf("%w: disk on fire", sdk.ErrUnavailable) }
			content := data(2*testChunk, 5)
			c := e.init(t, "f.bin", len(content))
			e.putAll(t, c, content)
			u, err := e.svc.Complete(context.Background(), c.Upload.ID)
			if wait {
				wantCode(t, err, host.CodeBackendUnavailable)
				if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "disk on fire") {
					t.Fatalf("Complete = %v, want the cause", err)
				}
				if lines := logs.errorLines(); len(lines) != 0 {
					t.Fatalf("the failure Complete returned was logged too:\n%s", strings.Join(lines, "\n"))
				}
				return
			}
			// Complete does not wait: it finds the upload finalizing, or failed already.
			if (err != nil || u.Status != host.StatusFinalizing) && host.ErrorCode(err) != host.CodeDeliveryFailed {
				t.Fatalf("Complete without waiting = %+v, %v; want finalizing or delivery_failed", u, err)
			}
			if j := e.svc.job(c.Upload.ID); j != nil {
				<-j.done
			}
			lines := logs.errorLines()
			if len(lines) != 1 || !strings.Contains(lines[0], "delivery failed") || !strings.Contains(lines[0], "disk on fire") ||
				!strings.Contains(lines[0], "of 2048 bytes") {
				t.Fatalf("error lines:\n%s\nwant one delivery failure with its cause", strings.Join(lines, "\n"))
			}
		})
	}
}

// A file refused as sent (its SHA-256 is not the one declared at init) is the client's to fix:
// the delivery logs it at info, never as an error, whether complete waits or not.
func TestRefusedDeliveryIsNoError(t *testing.T) {
	logs := &logBuffer{}
	e := newEnv(t, func(o *Options) {
		o.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: logs})
	})
	content := data(2*testChunk, 6)
	c, err := e.svc.Init(context.Background(), InitRequest{Filename: "f.bin", TotalSize: int64(len(content)),
		ChecksumSHA256: strings.Repeat("ab", 32)})
	if err != nil {
		t.Fatal(err)
	}
	e.putAll(t, c, content)
	_, err = e.svc.Complete(context.Background(), c.Upload.ID)
	wantCode(t, err, host.CodeChecksumMismatch)
	if lines := logs.errorLines(); len(lines) != 0 {
		t.Fatalf("a refused file logged errors:\n%s", strings.Join(lines, "\n"))
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if n := strings.Count(logs.b.String(), "[INFO]  delivery refused"); n != 1 {
		t.Fatalf("%d delivery refused lines, want 1:\n%s", n, logs.b.String())
	}
}
