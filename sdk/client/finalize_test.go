package client

import (
	"bytes"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
)

func TestFinalize(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		polls         int    // status reads until the delivery ends (0: complete answers 200)
		failDelivery  string // the delivery ends failed with this message
		completeFails []int  // statuses complete answers first, in order
		wantErr       func(error) bool
		wantCompletes int
	}{
		"200 at once":           {wantCompletes: 1},
		"202 then polled":       {polls: 3, wantCompletes: 1},
		"202 then failed":       {polls: 2, failDelivery: "backend refused", wantCompletes: 1, wantErr: isDelivery("backend refused")},
		"503 then 200":          {completeFails: []int{503}, wantCompletes: 2},
		"502 then 503 then 202": {polls: 1, completeFails: []int{502, 503}, wantCompletes: 3},
		"400 checksum_mismatch": {completeFails: []int{400}, wantCompletes: 1, wantErr: isAPI(400)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, 10)
			f.polls, f.failDelivery = tc.polls, tc.failDelivery
			var n atomic.Int32
			f.completeHook = func(w http.ResponseWriter, r *http.Request) bool {
				i := int(n.Add(1)) - 1
				if i < len(tc.completeFails) {
					fail(w, tc.completeFails[i], "delivery_failed", "injected")
					return true
				}
				return false
			}
			var log progressLog
			data := randomBytes(25)
			res, err := f.client(t).Upload(t.Context(), "a", bytes.NewReader(data), 25, UploadOptions{Progress: log.record})
			if got := f.count("POST /upload/up1/complete"); got != tc.wantCompletes {
				t.Errorf("%d complete calls, want %d", got, tc.wantCompletes)
			}
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("err = %v", err)
				}
				if ue, ok := errors.AsType[*UploadError](err); !ok || ue.FileID != "up1" {
					t.Errorf("err = %v, want an *UploadError for up1", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.FinalPath != "/final/a" {
				t.Errorf("final path %q", res.FinalPath)
			}
			log.check(t, 25, 3)
			if tc.polls > 0 && !log.sawDelivery(50) {
				t.Error("no progress report with the server's delivery percent")
			}
		})
	}
}

func isDelivery(msg string) func(error) bool {
	return func(err error) bool {
		de, ok := errors.AsType[*DeliveryError](err)
		return ok && de.Message == msg && de.FileID == "up1"
	}
}

func isAPI(status int) func(error) bool {
	return func(err error) bool {
		ae, ok := errors.AsType[*APIError](err)
		return ok && ae.Status == status
	}
}

// sawDelivery reports whether a finalizing report carried percent.
func (l *progressLog) sawDelivery(percent int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.reports {
		if p.Phase == PhaseFinalizing && p.DeliveryPercent == percent {
			return true
		}
	}
	return false
}
