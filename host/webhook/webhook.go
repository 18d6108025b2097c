// Package webhook notifies clients' webhook URLs of delivered uploads.
//
// Each notification is a POST of JSON {event: "upload.complete", file_id, filename,
// total_size, final_path, storage_backend, completed_at}, sent in the background with a
// bounded timeout and a few retries with backoff. It never blocks a delivery.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// Attempts and timing of a notification.
const (
	Attempts       = 4
	AttemptTimeout = 10 * time.Second
	FirstBackoff   = 2 * time.Second
)

// Sender sends webhook notifications.
type Sender struct {
	client *http.Client
	log    hclog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Sender.
func New(log hclog.Logger) *Sender {
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		client: &http.Client{Timeout: AttemptTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		log: log, ctx: ctx, cancel: cancel,
	}
}

type event struct {
	Event          string `json:"event"`
	FileID         string `json:"file_id"`
	Filename       string `json:"filename"`
	TotalSize      int64  `json:"total_size"`
	FinalPath      string `json:"final_path"`
	StorageBackend string `json:"storage_backend"`
	CompletedAt    string `json:"completed_at"`
}

// Delivered sends the upload.complete notification of u if it has a webhook URL.
func (s *Sender) Delivered(u *host.Upload) {
	if u.WebhookURL == "" {
		return
	}
	body, err := json.Marshal(event{
		Event: "upload.complete", FileID: u.ID, Filename: u.Filename, TotalSize: u.TotalSize,
		FinalPath: u.FinalPath, StorageBackend: u.StorageBackend,
		CompletedAt: u.CompletedAt.UTC().Format(time.RFC3339),
	})
	if err != nil {
		s.log.Error("encoding webhook", "upload_id", u.ID, "error", err)
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.send(u.ID, u.WebhookURL, body)
	}()
}

func (s *Sender) send(id, url string, body []byte) {
	backoff := FirstBackoff
	for attempt := 1; attempt <= Attempts; attempt++ {
		err := s.post(url, body)
		if err == nil {
			s.log.Info("webhook delivered", "upload_id", id, "attempt", attempt)
			return
		}
		s.log.Warn("webhook attempt failed", "upload_id", id, "attempt", attempt, "error", err)
		if attempt == Attempts {
			break
		}
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
			return
		}
		backoff *= 4
	}
	s.log.Error("webhook given up", "upload_id", id, "attempts", Attempts)
}

func (s *Sender) post(url string, body []byte) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chunked-uploader-webhook/1")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

// Close stops retrying and waits for attempts in flight.
func (s *Sender) Close() {
	s.cancel()
	s.wg.Wait()
}
