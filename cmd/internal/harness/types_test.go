package harness

import (
	"encoding/json"
	"testing"
)

// TestStatusDecodes checks that Status reads the fields of client.Status through its embedded
// alias as well as its own, and that Status.Status is the upload's state.
func TestStatusDecodes(t *testing.T) {
	const body = `{"file_id":"f1","status":"finalizing","final_path":null,"checksum_sha256":"abc",
		"finalizing_progress_percent":40,"delivery_mode":"parts","delivered_parts":1,"delivery_error":"boom",
		"parts":[{"part":0,"status":"uploaded","checksum_sha256":"p0","delivered":true},
		         {"part":1,"status":"pending","checksum_sha256":null,"message":"lost"}]}`
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.FileID != "f1" || st.Status != "finalizing" || st.FinalPath != nil || Str(st.ChecksumSHA256) != "abc" ||
		st.FinalizingProgressPercent != 40 {
		t.Errorf("client.Status fields: %+v", st)
	}
	if st.DeliveryMode != "parts" || st.DeliveredParts != 1 || Str(st.DeliveryError) != "boom" {
		t.Errorf("delivery fields: mode %q, delivered %d, error %v", st.DeliveryMode, st.DeliveredParts, st.DeliveryError)
	}
	if len(st.Parts) != 2 {
		t.Fatalf("parts: %+v", st.Parts)
	}
	p0, p1 := st.Parts[0], st.Parts[1]
	if p0.Part != 0 || p0.Status != "uploaded" || Str(p0.ChecksumSHA256) != "p0" || !p0.Delivered || p0.Message != "" {
		t.Errorf("part 0: %+v", p0)
	}
	if p1.Part != 1 || p1.Status != "pending" || p1.ChecksumSHA256 != nil || p1.Delivered || p1.Message != "lost" {
		t.Errorf("part 1: %+v", p1)
	}
}

// TestResponseCode checks Code on an error answer and on an answer without a code.
func TestResponseCode(t *testing.T) {
	if got := (Response{Body: []byte(`{"error":"x","code":"upload_expired","status":410}`)}).Code(); got != "upload_expired" {
		t.Errorf("Code() = %q, want upload_expired", got)
	}
	if got := (Response{Body: []byte(`not json`)}).Code(); got != "" {
		t.Errorf("Code() of a non-JSON body = %q, want empty", got)
	}
}
