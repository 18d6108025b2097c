package s3store

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// inflight is the set of multipart upload ids this process is running. create is held
// from CreateMultipartUpload until the new id is registered, and by abortLeftovers, so a
// sweep never sees an upload of this process that is not registered yet.
type inflight struct {
	create sync.Mutex
	mu     sync.Mutex
	ids    map[string]bool
}

func (f *inflight) add(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ids == nil {
		f.ids = map[string]bool{}
	}
	f.ids[id] = true
}

func (f *inflight) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ids, id)
}

func (f *inflight) has(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ids[id]
}

// abortLeftovers aborts multipart uploads of key that this process is not running: the
// remains of an earlier attempt whose own abort failed (the server was down, the plugin
// was killed). The host gives every upload a key of its own, so nobody else writes to it.
// Failures are logged, never returned: they must not stop the new attempt.
func (s *Store) abortLeftovers(ctx context.Context, key string) {
	s.running.create.Lock()
	defer s.running.create.Unlock()
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(key),
	})
	if err != nil {
		s.log.Debug("listing leftover multipart uploads", "key", key, "error", err)
		return
	}
	for _, u := range out.Uploads {
		id := aws.ToString(u.UploadId)
		if aws.ToString(u.Key) != key || s.running.has(id) {
			continue
		}
		if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: aws.String(id),
		}); err != nil {
			s.log.Warn("aborting a leftover multipart upload", "key", key, "upload_id", id, "error", err)
			continue
		}
		s.log.Info("aborted a leftover multipart upload of an earlier attempt", "key", key, "upload_id", id)
	}
}
