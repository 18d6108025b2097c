package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, nil)
		r := s.Do(t, http.MethodGet, "/health", nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /health: got %v, want 200", r)
		}
		h := harness.Decode[harness.HealthResponse](t, r)
		// A missing storage object leaves BackendType empty, which no backend is called.
		if h.Status != "ok" || h.Storage.BackendType != b.name || h.Storage.Status != "healthy" {
			t.Errorf("GET /health = %s, want status ok and storage {backend_type %q, status healthy}", r.Body, b.name)
		}
		// docs/api.md shows a message; its content (or null when healthy) is
		// not part of the contract.
		t.Logf("GET /health = %s", bytes.TrimSpace(r.Body))
	})
}

// TestHappyPath uploads 7.5 chunks in parallel and out of order under a
// nested path and checks every answer, the delivered bytes and what happens
// after delivery.
func TestHappyPath(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, nil)
		const chunk = mib
		total := 7*chunk + chunk/2
		data := harness.RandomBytes(total, 1)
		parts := harness.PartData(data, chunk)
		whole := harness.SHA256Hex(data)

		before := time.Now()
		req := map[string]any{"filename": "videos/2024/clip.bin", "total_size": total, "checksum_sha256": whole}
		body, _ := json.Marshal(req)
		r := s.Do(t, http.MethodPost, "/upload/init", bytes.NewReader(body),
			map[string]string{"X-API-Key": harness.APIKey, "Content-Type": "application/json; charset=utf-8"})
		if r.Status != http.StatusOK {
			t.Fatalf("POST /upload/init: got %v, want 200", r)
		}
		up := harness.Decode[harness.InitResponse](t, r)
		checkInit(t, up, total, chunk, before)
		id := up.FileID

		st := s.Status(t, id)
		if st.FileID != id || st.Filename != "clip.bin" || st.Path != "videos/2024" || st.TotalSize != int64(total) ||
			st.ChunkSize != chunk || st.TotalParts != 8 || st.UploadedParts != 0 || st.ProgressPercent != 0 ||
			st.UploadProgressPercent != 0 || st.Status != "pending" || st.Phase != "uploading" ||
			st.StorageBackend != b.name || harness.Str(st.FinalPath) != "" {
			t.Errorf("status before any part = %+v, want file_id %s, filename clip.bin, path videos/2024, total_size %d, chunk_size %d, 8 parts, 0 uploaded, progress 0, pending/uploading, storage_backend %s, no final_path",
				st, id, total, chunk, b.name)
		}
		harness.ParseTime(t, "status created_at", st.CreatedAt)
		if st.ExpiresAt != up.ExpiresAt {
			t.Errorf("status expires_at = %q, init said %q", st.ExpiresAt, up.ExpiresAt)
		}
		checkParts(t, st.Parts, make([]string, 8))

		// All parts in parallel, in a shuffled order.
		order := rand.Perm(len(parts))
		t.Logf("part order: %v", order)
		results := make([]harness.PartResponse, len(parts))
		var wg sync.WaitGroup
		for _, n := range order {
			wg.Go(func() {
				rr, err := s.TryPutPart(id, n, up.Parts[n].Token, parts[n])
				if err != nil {
					t.Errorf("PUT part %d: %v", n, err)
					return
				}
				if rr.Status != http.StatusOK {
					t.Errorf("PUT part %d: got %v, want 200", n, rr)
					return
				}
				var p harness.PartResponse
				if err := json.Unmarshal(rr.Body, &p); err != nil {
					t.Errorf("PUT part %d: %v: %v", n, rr, err)
				}
				results[n] = p
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		maxUploaded := 0
		for n, p := range results {
			if p.UploadID != id || p.PartNumber != n || p.Status != "uploaded" || p.ChecksumSHA256 != harness.SHA256Hex(parts[n]) ||
				p.UploadedParts < 1 || p.UploadedParts > 8 || p.TotalParts != 8 {
				t.Errorf("PUT part %d = %+v, want upload_id %s, part_number %d, status uploaded, checksum_sha256 %s, uploaded_parts 1..8, total_parts 8",
					n, p, id, n, harness.SHA256Hex(parts[n]))
			}
			maxUploaded = max(maxUploaded, p.UploadedParts)
		}
		if maxUploaded != 8 {
			t.Errorf("largest uploaded_parts over all part answers = %d, want 8", maxUploaded)
		}

		// A retry with the same bytes (lost reply) succeeds.
		p := s.MustPutPart(t, id, 3, up.Parts[3].Token, parts[3])
		if p.UploadedParts != 8 || p.TotalParts != 8 {
			t.Errorf("re-sent part 3: %+v, want uploaded_parts 8 of 8", p)
		}

		st = s.Status(t, id)
		wantSums := make([]string, 8)
		for n := range parts {
			wantSums[n] = harness.SHA256Hex(parts[n])
		}
		if st.UploadedParts != 8 || st.ProgressPercent != 100 || st.UploadProgressPercent != 100 || st.Status != "pending" || st.Phase != "uploading" {
			t.Errorf("status after all parts = %+v, want 8 uploaded, progress 100, pending/uploading", st)
		}
		checkParts(t, st.Parts, wantSums)

		r = s.Complete(t, id)
		if r.Status != http.StatusOK {
			t.Fatalf("complete: got %v, want 200", r)
		}
		c := harness.Decode[harness.CompleteResponse](t, r)
		key := "videos/2024/" + id + "_clip.bin"
		if c.FileID != id || (c.Filename != "clip.bin" && c.Filename != "videos/2024/clip.bin") || c.TotalSize != int64(total) ||
			c.Status != "complete" || c.Phase != "complete" || c.StorageBackend != b.name || harness.Str(c.ChecksumSHA256) != whole ||
			c.FinalizingProgressPercent != 100 || !strings.HasSuffix(harness.Str(c.FinalPath), key) {
			t.Errorf("complete = %s, want file_id %s, filename clip.bin, total_size %d, complete/complete, storage_backend %s, checksum_sha256 %s, finalizing_progress_percent 100, final_path ending in %s",
				r.Body, id, total, b.name, whole, key)
		}
		b.checkFinalPath(t, s, harness.Str(c.FinalPath), key)
		got := s.readObject(t, harness.Str(c.FinalPath))
		if !bytes.Equal(got, data) || harness.SHA256Hex(got) != whole {
			t.Errorf("delivered object: %d bytes, sha256 %s; want %d bytes, sha256 %s", len(got), harness.SHA256Hex(got), len(data), whole)
		}
		checkObjects(t, s, map[string]int64{key: int64(total)})

		st = s.Status(t, id)
		if st.Status != "complete" || st.Phase != "complete" || harness.Str(st.FinalPath) != harness.Str(c.FinalPath) || harness.Str(st.ChecksumSHA256) != whole ||
			st.FinalizingProgressPercent != 100 || st.BytesDelivered != int64(total) || harness.Str(st.FinalizationError) != "" ||
			st.ProgressPercent != 100 {
			t.Errorf("status after complete = %+v, want complete/complete, final_path %s, checksum_sha256 %s, finalizing 100, bytes_delivered %d, no finalization_error",
				st, harness.Str(c.FinalPath), whole, total)
		}

		r = s.Complete(t, id)
		if r.Status != http.StatusOK {
			t.Errorf("complete again: got %v, want 200", r)
		} else if c2 := harness.Decode[harness.CompleteResponse](t, r); harness.Str(c2.FinalPath) != harness.Str(c.FinalPath) || c2.Status != "complete" {
			t.Errorf("complete again = %s, want status complete and final_path %s", r.Body, harness.Str(c.FinalPath))
		}

		r = s.PutPart(t, id, 0, up.Parts[0].Token, parts[0], nil)
		harness.ExpectError(t, r, http.StatusConflict, "upload_complete")
		r = s.API(t, http.MethodDelete, "/upload/"+id, nil)
		harness.ExpectError(t, r, http.StatusConflict, "upload_complete")
		if got := s.readObject(t, harness.Str(c.FinalPath)); !bytes.Equal(got, data) {
			t.Errorf("after DELETE: the delivered object changed (%d bytes)", len(got))
		}
		if st := s.Status(t, id); st.Status != "complete" {
			t.Errorf("after DELETE: status %q, want complete", st.Status)
		}
	})
}

// checkInit checks an init answer for total bytes at chunk bytes per part.
func checkInit(tb testing.TB, up harness.InitResponse, total, chunk int, before time.Time) {
	tb.Helper()
	wantParts := (total + chunk - 1) / chunk
	if up.FileID == "" || up.TotalParts != wantParts || up.ChunkSize != int64(chunk) || len(up.Parts) != wantParts {
		tb.Fatalf("init = %+v, want a file_id, total_parts %d, chunk_size %d and %d parts", up, wantParts, chunk, wantParts)
	}
	exp := harness.ParseTime(tb, "expires_at", up.ExpiresAt)
	if lo, hi := before.Add(24*time.Hour-time.Minute), time.Now().Add(24*time.Hour+time.Minute); exp.Before(lo) || exp.After(hi) {
		tb.Errorf("expires_at = %s, want about 24 h (UPLOAD_TTL_HOURS default) from now", up.ExpiresAt)
	}
	for n, p := range up.Parts {
		size := int64(chunk)
		if n == wantParts-1 {
			size = int64(total - chunk*(wantParts-1))
		}
		if p.Part != n || p.Status != "pending" || p.Token == "" {
			tb.Errorf("init parts[%d] = %+v, want part %d, a token, status pending", n, p, n)
			continue
		}
		harness.CheckToken(tb, p.Token, up.FileID, n, size, exp)
	}
}

// checkParts compares the parts of a status answer with the per-part digests
// in want ("" = pending).
func checkParts(tb testing.TB, got []harness.PartStatus, want []string) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Errorf("status lists %d parts, want %d", len(got), len(want))
		return
	}
	for n, p := range got {
		wantStatus := "uploaded"
		if want[n] == "" {
			wantStatus = "pending"
		}
		if p.Part != n || p.Status != wantStatus || harness.Str(p.ChecksumSHA256) != want[n] {
			tb.Errorf("status parts[%d] = %+v, want part %d, status %s, checksum_sha256 %q", n, p, n, wantStatus, want[n])
		}
	}
}

// TestFilenameWithoutPath checks that a bare filename is delivered under files/.
func TestFilenameWithoutPath(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, nil)
		data := harness.RandomBytes(1000, 2)
		up := s.InitUpload(t, map[string]any{"filename": "report.pdf", "total_size": len(data)})
		checkInit(t, up, len(data), mib, time.Now().Add(-time.Minute))
		if st := s.Status(t, up.FileID); st.Filename != "report.pdf" || st.Path != "" {
			t.Errorf("status filename %q path %q, want report.pdf and \"\"", st.Filename, st.Path)
		}
		s.MustPutPart(t, up.FileID, 0, up.Parts[0].Token, data)
		c := s.CompleteAndWait(t, up.FileID, 30*time.Second)
		key := "files/" + up.FileID + "_report.pdf"
		if !strings.HasSuffix(harness.Str(c.FinalPath), key) {
			t.Errorf("final_path = %q, want it to end in %s", harness.Str(c.FinalPath), key)
		}
		b.checkFinalPath(t, s, harness.Str(c.FinalPath), key)
		if got := s.readObject(t, harness.Str(c.FinalPath)); !bytes.Equal(got, data) {
			t.Errorf("delivered %d bytes, want the %d bytes sent", len(got), len(data))
		}
		checkObjects(t, s, map[string]int64{key: int64(len(data))})
	})
}

// checkObjects asserts that the backend holds exactly want (key → size):
// no temporary file, partial object or multipart upload is left.
func checkObjects(tb testing.TB, s *server, want map[string]int64) {
	tb.Helper()
	if got := s.backend.objects(tb, s); !maps.Equal(got, want) {
		tb.Errorf("the %s backend holds %v, want exactly %v", s.backend.name, got, want)
	}
}

// TestZeroByteUpload checks that total_size 0 has no parts and delivers an
// empty object.
func TestZeroByteUpload(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, nil)
		ir := s.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": "empty/nothing.txt", "total_size": 0})
		if ir.Status != http.StatusOK {
			t.Fatalf("POST /upload/init total_size 0: got %v, want 200", ir)
		}
		up := harness.Decode[harness.InitResponse](t, ir)
		// The parts member as sent, to tell [] from null or a missing member.
		raw := harness.Decode[struct {
			Parts json.RawMessage `json:"parts"`
		}](t, ir)
		if up.TotalParts != 0 || string(raw.Parts) != "[]" {
			t.Errorf("init total_size 0: total_parts %d, parts %s; want 0 and []", up.TotalParts, raw.Parts)
		}
		r := s.Complete(t, up.FileID)
		if r.Status != http.StatusOK {
			t.Fatalf("complete: got %v, want 200", r)
		}
		c := harness.Decode[harness.CompleteResponse](t, r)
		key := "empty/" + up.FileID + "_nothing.txt"
		empty := sha256.Sum256(nil)
		if c.Status != "complete" || c.TotalSize != 0 || !strings.HasSuffix(harness.Str(c.FinalPath), key) || harness.Str(c.ChecksumSHA256) != fmt.Sprintf("%x", empty) {
			t.Errorf("complete = %s, want status complete, total_size 0, final_path ending in %s, checksum_sha256 of nothing", r.Body, key)
		}
		b.checkFinalPath(t, s, harness.Str(c.FinalPath), key)
		if got := s.readObject(t, harness.Str(c.FinalPath)); len(got) != 0 {
			t.Errorf("delivered %d bytes, want an empty object", len(got))
		}
		checkObjects(t, s, map[string]int64{key: 0})
	})
}

// TestIncludeParts checks that include_parts=false leaves the parts out.
func TestIncludeParts(t *testing.T) {
	t.Parallel()
	s := startServer(t, localBackend, nil)
	up := s.InitUpload(t, map[string]any{"filename": "a.bin", "total_size": 3 * mib})
	tests := map[string]struct {
		query     string
		wantParts bool
	}{
		"default":             {"", true},
		"include_parts=true":  {"?include_parts=true", true},
		"include_parts=false": {"?include_parts=false", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := s.API(t, http.MethodGet, "/upload/"+up.FileID+"/status"+tc.query, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("got %v, want 200", r)
			}
			raw := harness.Decode[map[string]json.RawMessage](t, r)
			parts, ok := raw["parts"]
			has := ok && string(parts) != "null"
			if has != tc.wantParts {
				t.Errorf("parts = %s (present %v), want parts listed: %v", parts, ok, tc.wantParts)
			}
			if tc.wantParts {
				var ps []harness.PartStatus
				if err := json.Unmarshal(parts, &ps); err != nil || len(ps) != 3 {
					t.Errorf("parts = %s, want 3 entries", parts)
				}
			}
			if st := harness.Decode[harness.Status](t, r); st.TotalParts != 3 || st.FileID != up.FileID {
				t.Errorf("status = %s, want file_id %s with 3 parts", r.Body, up.FileID)
			}
		})
	}
}

// TestPartChecksumHeaders checks X-Checksum-SHA256 and Content-Digest.
func TestPartChecksumHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t, localBackend, nil)
	data := harness.RandomBytes(2*mib+mib/2, 3)
	parts := harness.PartData(data, mib)
	up := s.InitUpload(t, map[string]any{"filename": "sums/a.bin", "total_size": len(data)})
	id := up.FileID
	digest := func(b []byte) string {
		sum := sha256.Sum256(b)
		return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
	}
	other := harness.RandomBytes(10, 99)

	refused := map[string]struct {
		header     map[string]string
		wantStatus int
		wantCode   string
	}{
		"wrong X-Checksum-SHA256":     {map[string]string{"X-Checksum-SHA256": harness.SHA256Hex(other)}, 400, "checksum_mismatch"},
		"wrong Content-Digest":        {map[string]string{"Content-Digest": digest(other)}, 400, "checksum_mismatch"},
		"malformed X-Checksum-SHA256": {map[string]string{"X-Checksum-SHA256": "not-hex"}, 400, "invalid_checksum"},
		"short X-Checksum-SHA256":     {map[string]string{"X-Checksum-SHA256": "abcd"}, 400, "invalid_checksum"},
		"malformed Content-Digest":    {map[string]string{"Content-Digest": "sha-256=:!!!:"}, 400, "invalid_checksum"},
	}
	for name, tc := range refused {
		t.Run(name, func(t *testing.T) {
			r := s.PutPart(t, id, 2, up.Parts[2].Token, parts[2], tc.header)
			harness.ExpectError(t, r, tc.wantStatus, tc.wantCode)
		})
	}
	st := s.Status(t, id)
	checkParts(t, st.Parts, []string{"", "", ""})

	accepted := map[string]struct {
		part   int
		header map[string]string
	}{
		"X-Checksum-SHA256": {0, map[string]string{"X-Checksum-SHA256": harness.SHA256Hex(parts[0])}},
		"Content-Digest":    {1, map[string]string{"Content-Digest": digest(parts[1])}},
	}
	for name, tc := range accepted {
		t.Run(name, func(t *testing.T) {
			r := s.PutPart(t, id, tc.part, up.Parts[tc.part].Token, parts[tc.part], tc.header)
			if r.Status != http.StatusOK {
				t.Fatalf("got %v, want 200", r)
			}
			if p := harness.Decode[harness.PartResponse](t, r); p.ChecksumSHA256 != harness.SHA256Hex(parts[tc.part]) {
				t.Errorf("checksum_sha256 = %s, want %s", p.ChecksumSHA256, harness.SHA256Hex(parts[tc.part]))
			}
		})
	}
	st = s.Status(t, id)
	checkParts(t, st.Parts, []string{harness.SHA256Hex(parts[0]), harness.SHA256Hex(parts[1]), ""})
	if st.UploadedParts != 2 {
		t.Errorf("uploaded_parts = %d, want 2", st.UploadedParts)
	}
}

// TestInitChecksum checks the init checksum_sha256: malformed is refused, and
// a delivery that does not match it fails and stays retryable. The file is
// larger than one S3 part, so the S3 plugin streams it into a multipart
// upload that it must abort.
func TestInitChecksum(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, nil)
		r := s.API(t, http.MethodPost, "/upload/init", map[string]any{"filename": "a.bin", "total_size": 10, "checksum_sha256": "xyz"})
		harness.ExpectError(t, r, http.StatusBadRequest, "invalid_checksum")

		data := harness.RandomBytes(s3PartSizeMB*mib+10, 4)
		parts := harness.PartData(data, mib)
		up := s.InitUpload(t, map[string]any{"filename": "bad/sum.bin", "total_size": len(data), "checksum_sha256": harness.SHA256Hex([]byte("something else"))})
		for n, p := range parts {
			s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, p)
		}
		staged := harness.RegularFiles(t, s.Staging())
		partwise := s.Status(t, up.FileID).DeliveryMode == "parts"
		for i := range 2 {
			r := s.Complete(t, up.FileID)
			st := s.Status(t, up.FileID)
			switch {
			case !partwise:
				// Whole delivery keeps the staged parts: a part sent again can fix the file.
				harness.ExpectError(t, r, http.StatusBadRequest, "checksum_mismatch")
				if st.Status != "failed" || st.Phase != "failed" || harness.Str(st.FinalizationError) == "" || st.UploadedParts != len(parts) {
					t.Errorf("attempt %d: status = %+v, want failed/failed with finalization_error and all %d parts still uploaded", i, st, len(parts))
				}
			case i == 0:
				// Part-wise: the parts are in the whole-file digest and only in the backend;
				// the unfinished object is aborted and every part must be sent again.
				harness.ExpectError(t, r, http.StatusBadRequest, "checksum_mismatch")
				if st.Status != "failed" || harness.Str(st.FinalizationError) == "" || st.UploadedParts != 0 {
					t.Errorf("attempt %d: status = %+v, want failed with finalization_error and every part pending", i, st)
				}
				for _, p := range st.Parts {
					if p.Status != "pending" || p.Message == "" {
						t.Errorf("part %d after the mismatch: %+v, want pending with a message", p.Part, p)
					}
				}
			default:
				harness.ExpectError(t, r, http.StatusBadRequest, "parts_missing")
			}
			if i == 0 {
				t.Logf("finalization_error: %s", harness.Str(st.FinalizationError))
			}
		}
		if got := harness.RegularFiles(t, s.Staging()); !partwise && !maps.Equal(got, staged) {
			t.Errorf("TEMP_STORAGE_PATH after the failed deliveries: %v, before: %v", got, staged)
		} else if partwise && len(got) != 0 {
			t.Errorf("TEMP_STORAGE_PATH after a refused part-wise file: %v, want nothing", got)
		}
		if partwise {
			// The abort of the unfinished object is queued and runs in the background.
			deadline := time.Now().Add(30 * time.Second)
			for len(b.objects(t, s)) != 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
		// The object is never made visible, and the host answers only after the
		// plugin discarded what it received: not even a temporary file (or, on
		// S3, a multipart upload in progress) is left.
		key := "bad/" + up.FileID + "_sum.bin"
		if objs := b.objects(t, s); len(objs) != 0 {
			t.Errorf("after a checksum mismatch the backend holds %v (object %s), want nothing", objs, key)
		}
	})
}

// TestCancel cancels a pending upload with one part uploaded.
func TestCancel(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, nil)
		data := harness.RandomBytes(2*mib+100, 5)
		parts := harness.PartData(data, mib)
		up := s.InitUpload(t, map[string]any{"filename": "cancel/me.bin", "total_size": len(data)})
		id := up.FileID
		s.MustPutPart(t, id, 0, up.Parts[0].Token, parts[0])
		// The part is staged, or (part-wise delivery) already in the backend, whose staged
		// copy is then removed: one of the two, whichever is looked at first.
		if staged := harness.RegularFiles(t, s.Staging()); len(staged) == 0 {
			if st := s.Status(t, id); len(st.Parts) == 0 || !st.Parts[0].Delivered {
				t.Errorf("part 0 is neither in TEMP_STORAGE_PATH nor delivered after it was uploaded")
			}
		}

		r := s.API(t, http.MethodDelete, "/upload/"+id, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("DELETE: got %v, want 200", r)
		}
		c := harness.Decode[harness.CancelResponse](t, r)
		if c.FileID != id || c.Status != "cancelled" || c.Message == "" {
			t.Errorf("DELETE = %s, want file_id %s, status cancelled and a message", r.Body, id)
		}

		r = s.API(t, http.MethodGet, "/upload/"+id+"/status", nil)
		harness.ExpectError(t, r, http.StatusNotFound, "upload_not_found")
		r = s.PutPart(t, id, 1, up.Parts[1].Token, parts[1], nil)
		code := harness.ExpectErrorOneOf(t, r, map[string]int{"upload_not_found": 404, "invalid_token": 401, "token_mismatch": 403})
		t.Logf("PUT with a cancelled upload's token: %s", code)
		r = s.Complete(t, id)
		harness.ExpectError(t, r, http.StatusNotFound, "upload_not_found")
		r = s.API(t, http.MethodDelete, "/upload/"+id, nil)
		harness.ExpectError(t, r, http.StatusNotFound, "upload_not_found")

		if staged := harness.RegularFiles(t, s.Staging()); len(staged) != 0 {
			t.Errorf("TEMP_STORAGE_PATH still holds %v after cancel", staged)
		}
		// A part delivered before the cancel left an unfinished object, which the host
		// aborts in the background right after: it is gone soon, never kept.
		for deadline := time.Now().Add(time.Minute); len(b.objects(t, s)) != 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the backend holds %v a minute after cancel, want nothing", b.objects(t, s))
			}
		}
	})
}

// TestConcurrentResend sends one part twice at the same time with different
// bytes: the part is one of them whole, never a mix. A send either lands (200), is
// taken over by the newer send (409 part_superseded), or, once the part is in the
// part-wise delivery's whole-file digest, is refused because it differs (409
// part_already_delivered); at least one send of each round lands or the part was
// delivered already.
func TestConcurrentResend(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, nil)
		up := s.InitUpload(t, map[string]any{"filename": "race/a.bin", "total_size": mib})
		versions := [][]byte{harness.RandomBytes(mib, 20), harness.RandomBytes(mib, 21)}
		for round := range 3 {
			var wg sync.WaitGroup
			for _, v := range versions {
				wg.Go(func() {
					r, err := s.TryPutPart(up.FileID, 0, up.Parts[0].Token, v)
					if err != nil {
						t.Error(err)
						return
					}
					// 409 upload_finalizing is not possible here.
					ok := r.Status == http.StatusOK ||
						(r.Status == http.StatusConflict && (r.Code() == "part_superseded" || r.Code() == "part_already_delivered"))
					if !ok {
						t.Errorf("round %d: concurrent send: got %v, want 200 or 409 part_superseded/part_already_delivered", round, r)
					}
				})
			}
			wg.Wait()
		}
		st := s.Status(t, up.FileID)
		if len(st.Parts) != 1 {
			t.Fatalf("status lists %d parts, want 1", len(st.Parts))
		}
		sum := harness.Str(st.Parts[0].ChecksumSHA256)
		if sum != harness.SHA256Hex(versions[0]) && sum != harness.SHA256Hex(versions[1]) {
			t.Errorf("part checksum_sha256 = %s, want the digest of one of the two sends", sum)
		}
		c := s.CompleteAndWait(t, up.FileID, 30*time.Second)
		got := s.readObject(t, harness.Str(c.FinalPath))
		if harness.SHA256Hex(got) != sum || harness.Str(c.ChecksumSHA256) != sum {
			t.Errorf("delivered sha256 %s (complete says %s), want the part's %s", harness.SHA256Hex(got), harness.Str(c.ChecksumSHA256), sum)
		}
		checkObjects(t, s, map[string]int64{"race/" + up.FileID + "_a.bin": mib})
	})
}
