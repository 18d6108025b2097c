package client

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// startUpload inits an upload of data on f and stores the parts in have, as if an earlier
// run had sent them. It returns the upload id.
func startUpload(t *testing.T, f *fakeServer, data []byte, have ...int) string {
	t.Helper()
	in, err := f.client(t).Init(t.Context(), "r.bin", int64(len(data)), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range have {
		f.uploads[in.FileID].parts[n] = data[int64(n)*f.chunk : min(int64(len(data)), int64(n+1)*f.chunk)]
	}
	return in.FileID
}

func TestResume(t *testing.T) {
	t.Parallel()
	// 3500 bytes in chunks of 1000: the last part is 500 bytes, so a chunk size guessed as
	// ceil(total/parts) = 875 would be wrong for every part.
	data := randomBytes(3500)
	f := newFakeServer(t, 1000)
	id := startUpload(t, f, data, 0, 2)
	var log progressLog
	res, err := f.client(t, WithConcurrency(2)).Resume(t.Context(), id, bytes.NewReader(data), 3500, UploadOptions{Progress: log.record})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f.data(id), data) {
		t.Fatal("server has other bytes")
	}
	if res.FileID != id || res.FinalPath != "/final/r.bin" {
		t.Errorf("result %+v", res)
	}
	for n, want := range []int{0, 1, 0, 1} {
		if got := f.count("PUT /upload/" + id + "/part/" + string(rune('0'+n))); got != want {
			t.Errorf("part %d sent %d times, want %d", n, got, want)
		}
	}
	if f.count("GET /upload/"+id+"/status?include_tokens=true") != 1 {
		t.Errorf("requests %v: want one status read with include_tokens=true", f.requests)
	}
	log.check(t, 3500, 4)
	if first := log.reports[0]; first.ResumedBytes != 2000 || first.BytesUploaded != 2000 || first.PartsDone != 2 {
		t.Errorf("first report %+v, want 2000 resumed bytes and 2 parts done", first)
	}
}

func TestResumeStates(t *testing.T) {
	t.Parallel()
	data := randomBytes(2500)
	tests := map[string]struct {
		setup         func(f *fakeServer, id string)
		size          int64
		wantErr       error
		wantPUTs      int
		wantCompletes int
	}{
		"all parts there":  {setup: nil, size: 2500, wantCompletes: 1},
		"already complete": {setup: func(f *fakeServer, id string) { f.uploads[id].status = StatusComplete }, size: 2500},
		"finalizing":       {setup: func(f *fakeServer, id string) { f.uploads[id].status, f.uploads[id].polls = StatusFinalizing, 2 }, size: 2500, wantCompletes: 1},
		"failed delivery":  {setup: func(f *fakeServer, id string) { f.uploads[id].status = StatusFailed }, size: 2500, wantCompletes: 1},
		"size differs":     {size: 2499, wantErr: ErrSizeMismatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t, 1000)
			id := startUpload(t, f, data, 0, 1, 2)
			if tc.setup != nil {
				f.mu.Lock()
				tc.setup(f, id)
				f.mu.Unlock()
			}
			res, err := f.client(t).Resume(t.Context(), id, bytes.NewReader(data[:tc.size]), tc.size, UploadOptions{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil || res.FinalPath != "/final/r.bin" {
				t.Fatalf("res %+v, err %v", res, err)
			}
			if got := f.count("PUT"); got != tc.wantPUTs {
				t.Errorf("%d part uploads, want %d", got, tc.wantPUTs)
			}
			if got := f.count("POST /upload/" + id + "/complete"); got != tc.wantCompletes {
				t.Errorf("%d complete calls, want %d", got, tc.wantCompletes)
			}
		})
	}
}

func TestResumeErrors(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, 1000)
	c := f.client(t)
	_, err := c.Resume(t.Context(), "nope", bytes.NewReader(nil), 0, UploadOptions{})
	if ae, ok := errors.AsType[*APIError](err); !ok || ae.Status != 404 || ae.Code != "upload_not_found" {
		t.Errorf("unknown id: err = %v, want 404 upload_not_found", err)
	}
	if f.count("GET /upload/nope/status") != 1 {
		t.Error("a 404 was retried")
	}
	// A pending part without a token (the upload expired) is an error, not a PUT without auth.
	data := randomBytes(1500)
	id := startUpload(t, f, data)
	f.mu.Lock()
	f.hideTokens = true
	f.mu.Unlock()
	_, err = c.Resume(t.Context(), id, bytes.NewReader(data), 1500, UploadOptions{})
	if err == nil || !strings.Contains(err.Error(), "no token") || f.count("PUT") != 0 {
		t.Errorf("err = %v, want a missing token error and no PUT", err)
	}
}

// An upload the server reports as expired cannot be resumed: ErrUploadExpired, no PUT.
func TestResumeExpired(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t, 1000)
	c := f.client(t)
	data := randomBytes(1500)
	id := startUpload(t, f, data)
	f.mu.Lock()
	f.uploads[id].status = StatusExpired
	f.hideTokens = true
	f.mu.Unlock()
	_, err := c.Resume(t.Context(), id, bytes.NewReader(data), 1500, UploadOptions{})
	ue, ok := errors.AsType[*UploadError](err)
	if !ok || ue.FileID != id || !errors.Is(err, ErrUploadExpired) || f.count("PUT") != 0 {
		t.Errorf("err = %v, want an *UploadError with ErrUploadExpired and no PUT", err)
	}
}
