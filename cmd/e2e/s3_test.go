package e2e

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestS3Multipart delivers a 23 MiB file, sent in 1 MiB parts, to S3 with
// S3_PART_SIZE_MB=5: the object read back has the right bytes and is a
// multipart object of 5 parts (its ETag ends in -5).
func TestS3Multipart(t *testing.T) {
	t.Parallel()
	b := s3SharedBackend
	s := startServer(t, b, nil)
	const total = 23 * mib
	data := harness.RandomBytes(total, 30)
	whole := harness.SHA256Hex(data)
	up := s.InitUpload(t, map[string]any{"filename": "multi/big.bin", "total_size": total, "checksum_sha256": whole})
	s.UploadParts(t, up, harness.PartData(data, mib), 4)

	c := s.CompleteAndWait(t, up.FileID, 2*time.Minute)
	key := "multi/" + up.FileID + "_big.bin"
	b.checkFinalPath(t, s, harness.Str(c.FinalPath), key)
	if harness.Str(c.ChecksumSHA256) != whole {
		t.Errorf("complete checksum_sha256 = %s, want %s", harness.Str(c.ChecksumSHA256), whole)
	}
	if got := s.readObject(t, harness.Str(c.FinalPath)); !bytes.Equal(got, data) {
		t.Errorf("delivered object: %d bytes, sha256 %s; want %d bytes, sha256 %s", len(got), harness.SHA256Hex(got), total, whole)
	}
	wantParts := (total + s3PartSizeMB*mib - 1) / (s3PartSizeMB * mib)
	etag := s3ETag(t, s, harness.Str(c.FinalPath))
	_, n, _ := strings.Cut(etag, "-")
	if got, err := strconv.Atoi(n); err != nil || got != wantParts {
		t.Errorf("ETag %q: want a multipart ETag ending in -%d (%d MiB in %d MiB parts)", etag, wantParts, total/mib, s3PartSizeMB)
	}
	t.Logf("ETag %s", etag)
	checkObjects(t, s, map[string]int64{key: total})
}
