package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// View reads the upload and its parts at one point in time: while parts are recorded as
// delivered, every view's bytes_delivered is the size of the parts it shows delivered.
func TestViewIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "uploads.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const parts, chunk = 200, 1 << 20
	now := time.Now()
	u := &host.Upload{ID: "u-view", Filename: "f.bin", TotalSize: parts * chunk, ChunkSize: chunk, TotalParts: parts,
		StorageBackend: "local", DeliveryMode: host.DeliverParts, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateUpload(ctx, u); err != nil {
		t.Fatal(err)
	}
	versions := make([]int64, parts)
	for n := range parts {
		mark, _, err := db.MarkPartUploaded(ctx, u.ID, n, strings.Repeat("0", 64), 0, now)
		if err != nil {
			t.Fatal(err)
		}
		versions[n] = mark.Version
	}
	handle := []byte("h")
	if err := db.SetHandle(ctx, u.ID, handle); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		for n := range parts {
			if ok, err := db.RecordDelivered(ctx, u.ID, n, versions[n], handle, []byte("r"), nil); err != nil || !ok {
				done <- err
				return
			}
		}
		done <- nil
	}()
	views := 0
	for finished := false; !finished; views++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		default:
		}
		for _, withParts := range []bool{false, true} {
			v, err := db.View(ctx, u.ID, withParts)
			if err != nil {
				t.Fatal(err)
			}
			if got := int64(v.DeliveredParts) * chunk; got != v.Upload.BytesDelivered {
				t.Fatalf("view %d (parts %v): %d parts delivered (%d bytes), bytes_delivered %d", views, withParts, v.DeliveredParts, got, v.Upload.BytesDelivered)
			}
		}
	}
	if v, _ := db.View(ctx, u.ID, false); v.DeliveredParts != parts {
		t.Fatalf("after the deliveries: %d parts delivered, want %d", v.DeliveredParts, parts)
	}
	t.Logf("%d views while %d parts were recorded", views, parts)
}
