package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/sdk/client"
)

// clock is a fake time source that tests move forward.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func uploading(done, total int64) client.Progress {
	return client.Progress{FileID: "f", Phase: client.PhaseUploading, BytesUploaded: done, TotalBytes: total}
}

func TestProgressPlain(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	clk := &clock{t: time.Unix(1000, 0)}
	v := newProgressView(&b, false)
	v.now = clk.now
	// 1% steps a millisecond apart: a line at 0%, then every 5%.
	for i := int64(0); i <= 100; i++ {
		v.update(uploading(i, 100))
		clk.t = clk.t.Add(time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 21 || !strings.HasPrefix(lines[0], "uploading   0%") || !strings.HasPrefix(lines[20], "uploading 100%") {
		t.Fatalf("%d lines, want 21 (0%%, 5%%, ... 100%%):\n%s", len(lines), b.String())
	}
	if strings.ContainsAny(b.String(), "\r\x1b") {
		t.Error("plain output has terminal control characters")
	}
	// A stalled upload still prints a line every 10 seconds.
	b.Reset()
	v = newProgressView(&b, false)
	v.now = clk.now
	v.update(uploading(0, 1000))
	for range 25 {
		clk.t = clk.t.Add(time.Second)
		v.update(uploading(1, 1000))
	}
	if n := strings.Count(b.String(), "\n"); n != 3 {
		t.Errorf("%d lines in 25 s without progress, want 3 (start, 10 s, 20 s):\n%s", n, b.String())
	}
}

func TestProgressTerminal(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	clk := &clock{t: time.Unix(1000, 0)}
	v := newProgressView(&b, true)
	v.now = clk.now
	// 2 seconds of reports every 10ms: at most 10 redraws a second, plus the first and last.
	for i := int64(0); i <= 200; i++ {
		v.update(uploading(i*1<<20, 200<<20))
		clk.t = clk.t.Add(10 * time.Millisecond)
	}
	draws := strings.Count(b.String(), "\r\x1b[K")
	if draws < 15 || draws > 22 {
		t.Errorf("%d redraws in 2 s, want about 20", draws)
	}
	if strings.Count(b.String(), "\n") != 0 {
		t.Error("the progress line was not redrawn in place")
	}
	last := b.String()[strings.LastIndex(b.String(), "\r"):]
	for _, want := range []string{"[########################]", "100%", "200.0 MiB / 200.0 MiB", "MiB/s", "ETA"} {
		if !strings.Contains(last, want) {
			t.Errorf("last line %q lacks %q", last, want)
		}
	}
	v.update(client.Progress{FileID: "f", Phase: client.PhaseFinalizing, TotalBytes: 200 << 20})
	v.update(client.Progress{FileID: "f", Phase: client.PhaseComplete, TotalBytes: 200 << 20, DeliveryPercent: 100})
	if !strings.HasSuffix(b.String(), "\n\r\x1b[Kfinalizing: the server delivers the file to storage, 0%\n") {
		t.Errorf("finalizing should start a new line and the output end with a newline: %q", b.String()[len(b.String())-80:])
	}
}
