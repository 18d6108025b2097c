package host

import "time"

// Webhook event kinds.
const (
	EventUploadComplete = "upload.complete"
	EventUploadFailed   = "upload.failed"
)

// WebhookEvent is a notification waiting in the outbox. It is stored in the same
// transaction as the state change it reports, so it is never lost, and sent at least once.
type WebhookEvent struct {
	ID        string // also sent, for de-duplication by receivers
	UploadID  string
	URL       string
	Event     string
	Body      []byte // the JSON sent
	Attempts  int
	NextAt    time.Time
	CreatedAt time.Time
}
