package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/services"
	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// partwiseChunkMB is the chunk size of the part-wise tests: S3's smallest part, so that
// every backend stores these uploads part by part.
const partwiseChunkMB = 5

// waitStatus polls the upload's status until cond holds (a wait for background work, not a
// timing assertion: the bound only keeps a broken build from hanging).
func waitStatus(tb testing.TB, s *server, id, what string, cond func(harness.Status) bool) harness.Status {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := s.Status(tb, id)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: status %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stagedPartFiles counts the staged part files (not temporaries) of upload id.
func stagedPartFiles(tb testing.TB, s *server, id string) int {
	n := 0
	for name := range harness.RegularFiles(tb, s.Staging()) {
		if strings.HasPrefix(name, id+"/") && strings.HasSuffix(name, ".part") {
			n++
		}
	}
	return n
}

// unfinished reports the names among objs that are unfinished part-wise objects.
func unfinished(objs map[string]int64) []string {
	var out []string
	for name := range objs {
		base := path.Base(name)
		if strings.HasSuffix(name, s3MultipartSuffix) ||
			(strings.HasPrefix(base, ".") && (strings.HasSuffix(base, ".partial") || strings.HasSuffix(base, ".journal"))) {
			out = append(out, name)
		}
	}
	return out
}

// loseUnfinished removes the backend's unfinished object of key behind the host's back,
// as a backend that lost it (a wiped share, an aborted multipart upload) would.
func loseUnfinished(tb testing.TB, s *server, key string) {
	tb.Helper()
	dir, base := path.Split(key)
	hidden := func(name string) bool {
		return strings.HasPrefix(name, "."+base+".") && (strings.HasSuffix(name, ".partial") || strings.HasSuffix(name, ".journal"))
	}
	removed := 0
	switch s.backend.name {
	case "local":
		root := filepath.Join(s.Env["LOCAL_STORAGE_PATH"], filepath.FromSlash(dir))
		entries, _ := os.ReadDir(root)
		for _, e := range entries {
			if hidden(e.Name()) {
				if err := os.Remove(filepath.Join(root, e.Name())); err != nil {
					tb.Fatal(err)
				}
				removed++
			}
		}
	case "smb":
		m, err := smbServerMount(s)
		if err != nil {
			tb.Fatal(err)
		}
		defer m.close()
		root := path.Join(s.Env["SMB_PATH"], dir)
		infos, _ := m.ReadDir(root)
		for _, fi := range infos {
			if hidden(fi.Name()) {
				if err := m.Remove(path.Join(root, fi.Name())); err != nil {
					tb.Fatal(err)
				}
				removed++
			}
		}
	case "s3":
		c, bucket := s3Client(s), s.Env["S3_BUCKET"]
		ctx, cancel := context.WithTimeout(context.Background(), services.Timeout)
		defer cancel()
		out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
		if err != nil {
			tb.Fatal(err)
		}
		for _, u := range out.Uploads {
			if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket),
				Key: u.Key, UploadId: u.UploadId}); err != nil {
				tb.Fatal(err)
			}
			removed++
		}
	}
	if removed == 0 {
		tb.Fatalf("no unfinished object of %s found on %s to remove", key, s.backend.name)
	}
}

// TestPartwiseBackgroundDelivery: parts reach the backend while the upload is still
// going, staging drains, nothing is visible before complete, and complete only commits.
func TestPartwiseBackgroundDelivery(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, map[string]string{"CHUNK_SIZE_MB": "5"})
		// The local plugin reads staged parts from their files; SMB and S3 are sent the bytes.
		if want := fmt.Sprintf(`"staged_reads":%v`, b.name == "local"); !strings.Contains(s.Cur().Log(), want) {
			t.Errorf("the host's log does not say %s for the %s plugin:\n%s", want, b.name, s.Cur().Log())
		}
		chunk := partwiseChunkMB * mib
		data := harness.RandomBytes(3*chunk+12345, 90)
		parts := harness.PartData(data, chunk)
		up := s.InitUpload(t, map[string]any{"filename": "bg/file.bin", "total_size": len(data)})
		key := "bg/" + up.FileID + "_file.bin"
		// The local plugin also lets the host write parts into its unfinished file: a part
		// is then in the backend, and never staged, when its PUT is answered.
		inPlace := b.name == "local"
		if want := fmt.Sprintf(`"part_files":%v`, inPlace); !strings.Contains(s.Cur().Log(), want) {
			t.Errorf("the host's log does not say %s for the %s plugin", want, b.name)
		}
		for n := range 3 {
			s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, parts[n])
			if !inPlace {
				continue
			}
			if st := s.Status(t, up.FileID); st.DeliveredParts != n+1 || !st.Parts[n].Delivered {
				t.Errorf("after the 200 of part %d written in place: %d parts delivered, part %d %+v", n, st.DeliveredParts, n, st.Parts[n])
			}
			if staged := harness.RegularFiles(t, s.Staging()); len(staged) != 0 {
				t.Errorf("staging holds %v after part %d was written in place", staged, n)
			}
		}
		st := waitStatus(t, s, up.FileID, "three parts delivered", func(st harness.Status) bool {
			return st.DeliveredParts == 3 && stagedPartFiles(t, s, up.FileID) == 0
		})
		if st.DeliveryMode != "parts" || st.Status != "pending" || st.BytesDelivered != int64(3*chunk) {
			t.Fatalf("before the last part: %+v", st)
		}
		for n, p := range st.Parts {
			if p.Delivered != (n < 3) {
				t.Errorf("part %d delivered = %v", n, p.Delivered)
			}
		}
		objs := b.objects(t, s)
		if _, ok := objs[key]; ok {
			t.Fatalf("%s is visible before complete: %v", key, objs)
		}
		if len(unfinished(objs)) == 0 {
			t.Fatalf("the backend holds no unfinished object while parts are delivered: %v", objs)
		}
		s.MustPutPart(t, up.FileID, 3, up.Parts[3].Token, parts[3])
		start := time.Now()
		r := s.Complete(t, up.FileID)
		if r.Status != http.StatusOK {
			t.Fatalf("complete: %v", r)
		}
		c := harness.Decode[harness.CompleteResponse](t, r)
		t.Logf("%s: complete answered 200 %v after the last part", b.name, time.Since(start).Round(time.Millisecond))
		b.checkFinalPath(t, s, harness.Str(c.FinalPath), key)
		if got := s.readObject(t, harness.Str(c.FinalPath)); harness.SHA256Hex(got) != harness.SHA256Hex(data) || harness.Str(c.ChecksumSHA256) != harness.SHA256Hex(data) {
			t.Fatalf("delivered %d bytes sha256 %s (complete says %s), want %s", len(got), harness.SHA256Hex(got), harness.Str(c.ChecksumSHA256), harness.SHA256Hex(data))
		}
		checkObjects(t, s, map[string]int64{key: int64(len(data))})
		if files := harness.RegularFiles(t, s.Staging()); len(files) != 0 {
			t.Errorf("staging after complete: %v", files)
		}
	})
}

// TestPartwiseLostObject: the backend loses the unfinished object; the parts whose only
// copy it held go back to pending with a message, the client sends them again (the same
// bytes), and the upload completes with the right bytes.
func TestPartwiseLostObject(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, map[string]string{"CHUNK_SIZE_MB": "5"})
		chunk := partwiseChunkMB * mib
		data := harness.RandomBytes(3*chunk, 91)
		parts := harness.PartData(data, chunk)
		up := s.InitUpload(t, map[string]any{"filename": "lost/file.bin", "total_size": len(data)})
		key := "lost/" + up.FileID + "_file.bin"
		for n := range 2 {
			s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, parts[n])
		}
		waitStatus(t, s, up.FileID, "two parts delivered", func(st harness.Status) bool { return st.DeliveredParts == 2 })
		loseUnfinished(t, s, key)
		s.MustPutPart(t, up.FileID, 2, up.Parts[2].Token, parts[2])
		st := waitStatus(t, s, up.FileID, "lost parts pending", func(st harness.Status) bool {
			return st.UploadedParts == 1 && st.Parts[0].Status == "pending" && st.Parts[1].Status == "pending"
		})
		for n := range 2 {
			if !strings.Contains(st.Parts[n].Message, "lost") {
				t.Errorf("part %d is pending without a reason: %+v", n, st.Parts[n])
			}
		}
		harness.ExpectError(t, s.Complete(t, up.FileID), http.StatusBadRequest, "parts_missing")
		// Other bytes are refused: the file's digest already covers the parts as sent.
		other := append([]byte(nil), parts[0]...)
		other[0] ^= 0xff
		harness.ExpectError(t, s.PutPart(t, up.FileID, 0, up.Parts[0].Token, other, nil), http.StatusConflict, "part_already_delivered")
		for n := range 2 {
			s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, parts[n])
		}
		c := s.CompleteAndWait(t, up.FileID, time.Minute)
		if got := s.readObject(t, harness.Str(c.FinalPath)); harness.SHA256Hex(got) != harness.SHA256Hex(data) {
			t.Fatalf("delivered sha256 %s, want %s", harness.SHA256Hex(got), harness.SHA256Hex(data))
		}
		checkObjects(t, s, map[string]int64{key: int64(len(data))})
	})
}

// TestPartwiseCancelLeavesNothing: cancel aborts the unfinished object; no temporary
// file or open multipart upload is left.
func TestPartwiseCancelLeavesNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, map[string]string{"CHUNK_SIZE_MB": "5"})
		chunk := partwiseChunkMB * mib
		data := harness.RandomBytes(3*chunk, 92)
		parts := harness.PartData(data, chunk)
		up := s.InitUpload(t, map[string]any{"filename": "gone/file.bin", "total_size": len(data)})
		for n := range 2 {
			s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, parts[n])
		}
		waitStatus(t, s, up.FileID, "parts delivered", func(st harness.Status) bool { return st.DeliveredParts == 2 })
		if r := s.API(t, http.MethodDelete, "/upload/"+up.FileID, nil); r.Status != http.StatusOK {
			t.Fatalf("cancel: %v", r)
		}
		deadline := time.Now().Add(time.Minute)
		for len(b.objects(t, s)) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("after cancel the backend still holds %v", b.objects(t, s))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if files := harness.RegularFiles(t, s.Staging()); len(files) != 0 {
			t.Errorf("staging after cancel: %v", files)
		}
	})
}

// TestPartwiseHostKilled: the host is killed (SIGKILL) while parts are being delivered;
// after a restart on the same data the delivery goes on from what SQLite recorded and the
// upload completes with the right bytes, leaving nothing behind.
func TestPartwiseHostKilled(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, b backend) {
		s := startServer(t, b, map[string]string{"CHUNK_SIZE_MB": "5"})
		chunk := partwiseChunkMB * mib
		data := harness.RandomBytes(6*chunk+7, 93)
		parts := harness.PartData(data, chunk)
		up := s.InitUpload(t, map[string]any{"filename": "kill/file.bin", "total_size": len(data)})
		key := "kill/" + up.FileID + "_file.bin"
		for n := range 5 {
			s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, parts[n])
		}
		// Killed as soon as part of it reached the backend: some parts delivered, others not.
		waitStatus(t, s, up.FileID, "a part delivered", func(st harness.Status) bool { return st.DeliveredParts >= 1 })
		if err := s.Cur().Cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-s.Cur().Exited
		s2 := restartServer(t, s)
		for n := 5; n < len(parts); n++ {
			s2.MustPutPart(t, up.FileID, n, up.Parts[n].Token, parts[n])
		}
		c := s2.CompleteAndWait(t, up.FileID, time.Minute)
		if got := s2.readObject(t, harness.Str(c.FinalPath)); harness.SHA256Hex(got) != harness.SHA256Hex(data) {
			t.Fatalf("delivered sha256 %s, want %s", harness.SHA256Hex(got), harness.SHA256Hex(data))
		}
		checkObjects(t, s2, map[string]int64{key: int64(len(data))})
		if files := harness.RegularFiles(t, s2.Staging()); len(files) != 0 {
			t.Errorf("staging after complete: %v", files)
		}
	})
}

// restartServer starts a new host process on the data of s (whose process has
// exited): the same directory, database, staging and backend settings, on a new
// port.
func restartServer(tb testing.TB, s *server) *server {
	tb.Helper()
	s.Start(tb)
	return s
}
