package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// An event scheduled in the future is not due before its time, and is due from then on
// (next_attempt_at is unix milliseconds everywhere, also when an event is first queued).
func TestWebhookEventDueAtItsTime(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "uploads.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	ev := &host.WebhookEvent{ID: "ev-1", UploadID: "u-1", URL: "https://example.com/hook", Event: "upload.complete",
		Body: []byte(`{}`), NextAt: now.Add(time.Hour), CreatedAt: now}
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := insertEvent(ctx, tx, ev); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if due, err := db.DueEvents(ctx, now, 10); err != nil || len(due) != 0 {
		t.Fatalf("an event scheduled in an hour is due now: %v %v", due, err)
	}
	if due, err := db.DueEvents(ctx, now.Add(59*time.Minute), 10); err != nil || len(due) != 0 {
		t.Fatalf("an event scheduled in an hour is due after 59 minutes: %v %v", due, err)
	}
	due, err := db.DueEvents(ctx, now.Add(time.Hour+time.Second), 10)
	if err != nil || len(due) != 1 || due[0].ID != "ev-1" {
		t.Fatalf("the event is not due at its time: %v %v", due, err)
	}
}
