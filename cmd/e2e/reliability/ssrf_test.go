package reliability

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestWebhookTargetsRefusedAtInit: by default init refuses webhook_url targets that are
// not public, in every spelling, with 400 invalid_webhook_url and a message that says why;
// public targets are taken, and WEBHOOK_ALLOWED_HOSTS allows an internal one. Before, all
// of them were accepted.
func TestWebhookTargetsRefusedAtInit(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	refused := map[string]string{
		"http://127.0.0.1:9/hook":                           "loopback",
		"http://169.254.169.254/latest/meta-data/":          "metadata",
		"http://[fd00:ec2::254]/latest/meta-data/":          "metadata",
		"http://metadata.google.internal/computeMetadata/":  "metadata",
		"http://METADATA.GOOGLE.INTERNAL./computeMetadata/": "metadata",
		"http://2130706433/":                                "non-standard",
		"http://0x7f.1/":                                    "non-standard",
		"http://0x7f000001/":                                "non-standard",
		"http://0177.0.0.1/":                                "non-standard",
		"http://127.1/":                                     "non-standard",
		"http://10.0.0.1/":                                  "private",
		"http://172.16.5.4/":                                "private",
		"http://192.168.1.1/":                               "private",
		"http://100.64.0.1/":                                "CGNAT",
		"http://0.0.0.0:3000/":                              "unspecified",
		"http://[::]:3000/":                                 "unspecified",
		"http://[::1]/":                                     "loopback",
		"http://[::ffff:127.0.0.1]/":                        "loopback",
		"http://[fe80::1%25lo]/":                            "link-local",
		"http://[fc00::1]/":                                 "unique local",
		"http://224.0.0.1/":                                 "multicast",
		"http://localhost:3000/":                            "this machine",
		"http://foo.localhost/":                             "this machine",
		"http://db.corp.internal/":                          "internal",
		"http://printer.local/":                             "local network",
		"http://intranet/":                                  "single-label",
		"https://user:pw@127.0.0.1/x?token=1":               "loopback",
	}
	for target, why := range refused {
		r := s.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": "a.bin", "total_size": 1, "webhook_url": target})
		harness.ExpectError(t, r, http.StatusBadRequest, "invalid_webhook_url")
		if !strings.Contains(string(r.Body), why) {
			t.Errorf("webhook_url %s: %s, want the message to say %q", target, r.Body, why)
		}
	}
	for _, target := range []string{"https://example.com/hook?token=x", "http://93.184.215.14:8080/hook", "https://[2606:4700::1111]/h"} {
		r := s.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": "a.bin", "total_size": 1, "webhook_url": target})
		if r.Status != http.StatusOK {
			t.Errorf("public webhook_url %s: %v, want 200", target, r)
		}
	}
	if n := uploadCounts(t, s)["pending"]; n != 3 {
		t.Errorf("%v pending uploads, want 3 (the refused inits must create nothing)", n)
	}

	allowing := startServer(t, "local", map[string]string{"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1, 10.0.0.0/8"})
	for _, target := range []string{"http://127.0.0.1:9/hook", "http://10.1.2.3/hook"} {
		r := allowing.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": "a.bin", "total_size": 1, "webhook_url": target})
		if r.Status != http.StatusOK {
			t.Errorf("webhook_url %s with WEBHOOK_ALLOWED_HOSTS=127.0.0.1,10.0.0.0/8: %v, want 200", target, r)
		}
	}
	r := allowing.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": "a.bin", "total_size": 1, "webhook_url": "http://127.0.0.2/"})
	harness.ExpectError(t, r, http.StatusBadRequest, "invalid_webhook_url")
}

// TestWebhookRefusedAtConnect: the address is checked again when the webhook is sent. An
// upload accepted while WEBHOOK_ALLOWED_HOSTS allowed its loopback receiver completes; the
// host restarts without the setting; the queued event is never sent, /metrics counts the
// refusals as ordinary failed attempts (no oracle of what exists inside), and the log says
// why. Before, the event was delivered.
func TestWebhookRefusedAtConnect(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0) // down while the first host runs
	s := startServer(t, "local", map[string]string{"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "WEBHOOK_BACKOFF": "200ms"})
	data := harness.RandomBytes(1000, 41)
	up := s.InitUpload(t, map[string]any{"filename": "ssrf/a.bin", "total_size": len(data), "webhook_url": rc.url()})
	s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, data)
	s.CompleteAndWait(t, up.FileID, time.Minute)
	if !harness.WaitFor(30*time.Second, func() bool { return strings.Contains(s.Logs(), "webhook attempt failed") }) {
		t.Fatal("no webhook attempt within 30 s")
	}
	s.Stop(t)

	rc.start(t)
	delete(s.Env, "WEBHOOK_ALLOWED_HOSTS")
	s.Env["WEBHOOK_MAX_ATTEMPTS"] = "4"
	s.Start(t)
	if !harness.WaitFor(30*time.Second, func() bool { return strings.Contains(s.Logs(), "webhook given up") }) {
		t.Fatalf("the event was not given up within 30 s; receiver got %d requests", len(rc.requests()))
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests from a host that does not allow it", n)
	}
	if !strings.Contains(s.Logs(), "127.0.0.1 is a loopback address") {
		t.Errorf("the log does not say why the webhook was refused:\n%s", harness.Tail(s.Cur().LogPath))
	}
	m := s.Do(t, http.MethodGet, "/metrics", nil, nil)
	delivered := metricSumIn(m.Body, `chunked_uploader_webhook_attempts_total{result="delivered"}`)
	failed := metricSumIn(m.Body, `chunked_uploader_webhook_attempts_total{result="failed"}`)
	givenUp := metricSumIn(m.Body, `chunked_uploader_webhook_attempts_total{result="given_up"}`)
	// The first host made one or two attempts (receiver down), the second the rest of 4.
	if delivered != 0 || failed < 1 || givenUp != 1 {
		t.Errorf("/metrics: webhook attempts delivered %v, failed %v, given_up %v; want 0, at least 1, 1 (refusals count as failures)", delivered, failed, givenUp)
	}
	for _, line := range strings.Split(string(m.Body), "\n") {
		if strings.HasPrefix(line, "chunked_uploader_webhook") && (strings.Contains(line, "127.0.0.1") || strings.Contains(line, "refused")) {
			t.Errorf("/metrics tells about the refused receiver: %s", line)
		}
	}
}

// TestWebhookURLRedactedInLogs: a webhook URL's userinfo and query (where receivers put
// their secrets) never appear in the log, though its failed attempts are logged with the
// receiver named. Before, the query was in every "webhook attempt failed" line.
func TestWebhookURLRedactedInLogs(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, 0) // never started: connection refused
	s := startServer(t, "local", map[string]string{"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "WEBHOOK_BACKOFF": "200ms",
		"WEBHOOK_MAX_ATTEMPTS": "2", "LOG_LEVEL": "debug"})
	secretURL := fmt.Sprintf("http://hookuser:hookpass-s3cret@%s/hook?token=query-s3cret&sig=abc", rc.addr)
	up := s.InitUpload(t, map[string]any{"filename": "ssrf/b.bin", "total_size": 10, "webhook_url": secretURL})
	s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, harness.RandomBytes(10, 42))
	s.CompleteAndWait(t, up.FileID, time.Minute)
	if !harness.WaitFor(30*time.Second, func() bool { return strings.Contains(s.Logs(), "webhook given up") }) {
		t.Fatal("the webhook was not given up within 30 s")
	}
	logs := s.Logs()
	for _, secret := range []string{"s3cret", "hookuser", "sig=abc"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q of the webhook URL:\n%s", secret, harness.Tail(s.Cur().LogPath))
		}
	}
	if !strings.Contains(logs, "http://"+rc.addr+"/hook?[redacted]") {
		t.Errorf("the log does not name the receiver:\n%s", harness.Tail(s.Cur().LogPath))
	}
}
