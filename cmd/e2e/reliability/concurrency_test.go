package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestConcurrentPartPuts sends one part ten times at once, five times with the source
// bytes and five times with other bytes of the right size: every send is acknowledged,
// the part then is exactly one of the versions sent (its checksum is the staged file's),
// and the delivered file is the source with that part replaced by that version.
func TestConcurrentPartPuts(t *testing.T) {
	t.Parallel()
	s := startServer(t, "local", nil)
	const chunk = mib
	data := harness.RandomBytes(4*chunk, 13)
	parts := harness.PartData(data, chunk)
	up := s.InitUpload(t, map[string]any{"filename": "race/p.bin", "total_size": len(data)})
	for _, n := range []int{0, 1, 3} {
		s.MustPutPart(t, up.FileID, n, up.Parts[n].Token, parts[n])
	}
	const target = 2
	versions := map[string][]byte{harness.SHA256Hex(parts[target]): parts[target]}
	sends := make([][]byte, 10)
	for i := range sends {
		if i%2 == 0 {
			sends[i] = parts[target]
		} else {
			sends[i] = harness.RandomBytes(chunk, uint64(100+i))
			versions[harness.SHA256Hex(sends[i])] = sends[i]
		}
	}
	var sum string
	for round := range 3 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, b := range sends {
			wg.Go(func() {
				<-start
				r, err := s.TryPutPart(up.FileID, target, up.Parts[target].Token, b)
				if err != nil {
					t.Errorf("round %d send %d: %v", round, i, err)
					return
				}
				// A send lands (200), is taken over by a newer one while its body was still
				// arriving (409 part_superseded), or, once the part-wise delivery put the
				// part in the file's digest, differs from it (409 part_already_delivered).
				if r.Status == http.StatusConflict && (bytes.Contains(r.Body, []byte(`"part_superseded"`)) ||
					bytes.Contains(r.Body, []byte(`"part_already_delivered"`))) {
					return
				}
				if r.Status != http.StatusOK {
					t.Errorf("round %d send %d: got %v, want 200 or 409 part_superseded/part_already_delivered", round, i, r)
					return
				}
				var p harness.PartResponse
				if err := json.Unmarshal(r.Body, &p); err != nil || p.ChecksumSHA256 != harness.SHA256Hex(b) {
					t.Errorf("round %d send %d: answer %v, want checksum %s", round, i, r, harness.SHA256Hex(b))
				}
			})
		}
		close(start)
		wg.Wait()
		st := s.Status(t, up.FileID)
		sum = harness.Str(st.Parts[target].ChecksumSHA256)
		staged, _ := harness.FileSHA256(filepath.Join(s.Staging(), up.FileID, partName(target)))
		if staged == "" && st.Parts[target].Delivered {
			staged = sum // delivered and removed from staging
		}
		if _, ok := versions[sum]; !ok || st.Parts[target].Status != "uploaded" || staged != sum {
			t.Fatalf("round %d: part %d %+v, staged file sha256 %s; want uploaded with the checksum of one version sent, equal to the staged file's",
				round, target, st.Parts[target], staged)
		}
		// Every part is staged, or held by the backend (part-wise delivery removes it then).
		// The listing comes after the status: a part delivered in between has left staging,
		// so its delivery is read again after the listing.
		names := s.StagedFiles(t, up.FileID)
		after := s.Status(t, up.FileID)
		for n, p := range st.Parts {
			if !slices.Contains(names, partName(n)) && !p.Delivered && !after.Parts[n].Delivered {
				t.Errorf("round %d: part %d is neither staged (%v) nor delivered", round, n, names)
			}
		}
		t.Logf("round %d: the part is the %s version", round, map[bool]string{true: "source", false: "other"}[sum == harness.SHA256Hex(parts[target])])
	}
	want := bytes.Clone(data)
	copy(want[target*chunk:], versions[sum])
	c := s.CompleteAndWait(t, up.FileID, time.Minute)
	got, err := os.ReadFile(harness.Str(c.FinalPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("delivered %d bytes, sha256 %s; want the source with part %d replaced by the version %s (sha256 %s)",
			len(got), harness.SHA256Hex(got), target, sum, harness.SHA256Hex(want))
	}
}

// TestConcurrentCompletes: ten completes of one upload at once cause exactly one delivery
// and answer 200 or 202; bytes_delivered never decreases and never exceeds total_size.
// While a delivery is held (hang-put), parts and cancel are refused with 409
// upload_finalizing.
func TestConcurrentCompletes(t *testing.T) {
	t.Parallel()
	s := startServer(t, "fault", map[string]string{"CHUNK_SIZE_MB": "4", "PLUGIN_STALL_TIMEOUT": "4s"})

	t.Run("ten completes", func(t *testing.T) {
		const total = 96 * mib
		data := harness.RandomBytes(total, 14)
		up := s.InitUpload(t, map[string]any{"filename": "race/c.bin", "total_size": total})
		s.UploadParts(t, up, harness.PartData(data, 4*mib), 4)
		key := "race/" + up.FileID + "_c.bin"

		stopPoll := make(chan struct{})
		pollDone := make(chan []int64)
		go func() { pollDone <- pollDelivered(t, s, up.FileID, total, stopPoll) }()
		var wg sync.WaitGroup
		start := make(chan struct{})
		codes := make([]int, 10)
		for i := range codes {
			wg.Go(func() {
				<-start
				r, err := s.TryAPI(http.MethodPost, "/upload/"+up.FileID+"/complete", nil)
				if err != nil {
					t.Errorf("complete %d: %v", i, err)
					return
				}
				codes[i] = r.Status
				if r.Status != http.StatusOK && r.Status != http.StatusAccepted {
					t.Errorf("complete %d: got %v, want 200 or 202", i, r)
				}
			})
		}
		close(start)
		wg.Wait()
		c := s.WaitComplete(t, up.FileID, time.Minute)
		close(stopPoll)
		samples := <-pollDone
		t.Logf("answers %v; bytes_delivered while finalizing: %d samples, %v", codes, len(samples), summarize(samples))
		if n := s.puts(t, key); n != 1 {
			t.Errorf("the plugin received %d Puts of %s, want exactly 1", n, key)
		}
		if sum, n := harness.FileSHA256(harness.Str(c.FinalPath)); sum != harness.SHA256Hex(data) || n != total {
			t.Errorf("delivered %d bytes, sha256 %s; want %d, %s", n, sum, total, harness.SHA256Hex(data))
		}
		if st := s.Status(t, up.FileID); st.Status != "complete" || st.BytesDelivered != total {
			t.Errorf("final status %+v, want complete with bytes_delivered %d", st, total)
		}
	})

	t.Run("held in finalizing", func(t *testing.T) {
		const total = 8 * mib
		data := harness.RandomBytes(total, 15)
		parts := harness.PartData(data, 4*mib)
		up := s.InitUpload(t, map[string]any{"filename": "race/h.bin", "total_size": total})
		s.UploadParts(t, up, parts, 2)
		key := "race/" + up.FileID + "_h.bin"
		s.fault(t, "hang-put", true)
		stopPoll := make(chan struct{})
		pollDone := make(chan []int64)
		go func() { pollDone <- pollDelivered(t, s, up.FileID, total, stopPoll) }()
		completed := s.CompleteAsync(up.FileID)
		if !harness.WaitFor(30*time.Second, func() bool { return s.puts(t, key) == 1 }) {
			t.Fatal("the delivery did not reach the plugin")
		}
		if st := s.Status(t, up.FileID); st.Status != "finalizing" || st.Phase != "finalizing" {
			t.Fatalf("status %+v, want finalizing", st)
		}
		r, err := s.TryPutPart(up.FileID, 0, up.Parts[0].Token, parts[0])
		if err != nil {
			t.Fatal(err)
		}
		harness.ExpectError(t, r, http.StatusConflict, "upload_finalizing")
		harness.ExpectError(t, s.API(t, http.MethodDelete, "/upload/"+up.FileID, nil), http.StatusConflict, "upload_finalizing")
		res := <-completed // the stall timeout (4 s) ends the delivery
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		harness.ExpectErrorOneOf(t, res.R, map[string]int{"backend_unavailable": 503, "delivery_failed": 502})
		close(stopPoll)
		samples := <-pollDone
		t.Logf("bytes_delivered while held: %d samples, %v", len(samples), summarize(samples))
		s.fault(t, "hang-put", false)
		// The part refused while finalizing was not changed.
		st := s.Status(t, up.FileID)
		if st.Status != "failed" || harness.Str(st.Parts[0].ChecksumSHA256) != harness.SHA256Hex(parts[0]) {
			t.Errorf("status after the stalled delivery: %+v", st)
		}
		c := s.CompleteAndWait(t, up.FileID, time.Minute)
		if sum, _ := harness.FileSHA256(harness.Str(c.FinalPath)); sum != harness.SHA256Hex(data) {
			t.Errorf("delivered sha256 %s, want %s", sum, harness.SHA256Hex(data))
		}
		if n := s.puts(t, key); n != 2 {
			t.Errorf("the plugin received %d Puts of %s, want 2", n, key)
		}
	})
}

// pollDelivered polls the status as fast as it answers until stop and asserts that,
// while the upload is finalizing, bytes_delivered never decreases and stays within
// total. It returns the values seen while finalizing.
func pollDelivered(t *testing.T, s *server, id string, total int64, stop <-chan struct{}) []int64 {
	var seen []int64
	last := int64(-1)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-stop:
			return seen
		default:
		}
		st, err := s.TryStatus(id)
		if err != nil {
			t.Errorf("status while delivering: %v", err)
			return seen
		}
		if st.BytesDelivered > total || st.BytesDelivered < 0 {
			t.Errorf("bytes_delivered %d outside 0..%d (status %s)", st.BytesDelivered, total, st.Status)
		}
		if st.Status == "finalizing" {
			if st.BytesDelivered < last {
				t.Errorf("bytes_delivered went down from %d to %d", last, st.BytesDelivered)
			}
			last = st.BytesDelivered
			seen = append(seen, st.BytesDelivered)
		}
		if st.Status == "complete" && st.BytesDelivered != total {
			t.Errorf("complete with bytes_delivered %d, want %d", st.BytesDelivered, total)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return seen
}

// summarize describes a series of byte counts: distinct values in MiB.
func summarize(v []int64) string {
	var out []string
	for i, n := range v {
		if i == 0 || n != v[i-1] {
			out = append(out, fmt.Sprintf("%.1f", float64(n)/mib))
		}
	}
	if len(out) > 12 {
		out = append(out[:6], append([]string{"..."}, out[len(out)-5:]...)...)
	}
	return "[" + strings.Join(out, " ") + "] MiB"
}
