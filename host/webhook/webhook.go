// Package webhook delivers upload notifications to clients' webhook URLs.
//
// Events (upload.complete, upload.failed) are queued in the database in the same
// transaction as the state change they report (see NewEvent), then sent by a Sender: at
// least once, with exponential backoff and a bounded number of attempts, across restarts.
//
// Each request is a POST of the event's JSON with these headers:
//
//	X-Webhook-Id:        the event id (the same on every attempt: de-duplicate on it)
//	X-Webhook-Event:     upload.complete or upload.failed
//	X-Webhook-Timestamp: unix seconds when this attempt was signed
//	X-Webhook-Attempt:   1, 2, ...
//	X-Webhook-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with WEBHOOK_SECRET>
//
// The signature header is sent only when a secret is configured. Receivers should check it
// and reject timestamps far from their clock.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

// NewEvent builds the event of kind for u at the moment at. reason is the failure
// message for upload.failed. It returns nil when u has no webhook URL.
func NewEvent(kind string, u *host.Upload, at time.Time, reason string) *host.WebhookEvent {
	if u.WebhookURL == "" {
		return nil
	}
	var b [16]byte
	rand.Read(b[:])
	id := "evt_" + hex.EncodeToString(b[:])
	body := wire.WebhookEvent{
		Event: kind, EventID: id, FileID: u.ID, Filename: u.Filename, TotalSize: u.TotalSize,
		StorageBackend: u.StorageBackend,
	}
	switch kind {
	case host.EventUploadComplete:
		body.FinalPath, body.ChecksumSHA256 = &u.FinalPath, &u.DeliveredSHA256
		body.CompletedAt = at.UTC().Format(time.RFC3339)
	case host.EventUploadFailed:
		body.Error = &reason
		body.FailedAt = at.UTC().Format(time.RFC3339)
	}
	data, _ := json.Marshal(body) // strings and numbers always encode
	return &host.WebhookEvent{ID: id, UploadID: u.ID, URL: u.WebhookURL, Event: kind, Body: data, NextAt: at, CreatedAt: at}
}

// Sign returns the X-Webhook-Signature value of body sent at timestamp ts.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Outbox is where events wait (sqlite.DB).
type Outbox interface {
	DueEvents(ctx context.Context, now time.Time, limit int) ([]host.WebhookEvent, error)
	RecordAttempt(ctx context.Context, id string, attempts int, status string, next time.Time, lastErr string, at time.Time) error
	// Postpone moves the next attempt of event id to next if the event is still pending
	// with attempts attempts, and reports whether it did (false: an attempt was recorded
	// meanwhile, or the event is gone).
	Postpone(ctx context.Context, id string, attempts int, next time.Time) (bool, error)
	// NextEventAt returns when the earliest pending event is due (false: none pending).
	NextEventAt(ctx context.Context) (time.Time, bool, error)
}

// Event statuses in the outbox.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)
