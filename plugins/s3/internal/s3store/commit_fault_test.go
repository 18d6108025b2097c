package s3store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// The answers the fault-injecting server gives.
const (
	completeOK = `<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUploadResult><Bucket>uploads</Bucket><Key>dir/object.bin</Key><ETag>"abc-3"</ETag></CompleteMultipartUploadResult>`
	// S3 may answer 200 and report a failure in the body once the XML has started.
	complete200Error = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`
	noSuchUpload = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`
)

// faultServer answers CompleteMultipartUpload with the answers in complete, one per call
// (the last one repeated), and HeadObject with head.
type faultServer struct {
	complete  []func(w http.ResponseWriter)
	head      func(w http.ResponseWriter)
	completes atomic.Int32
}

func (f *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Query().Has("uploadId"):
		n := int(f.completes.Add(1)) - 1
		f.complete[min(n, len(f.complete)-1)](w)
	case r.Method == http.MethodHead:
		f.head(w)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.String(), http.StatusTeapot)
	}
}

func xmlAnswer(status int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// headAnswer answers HeadObject with an object of size bytes carrying nonce.
func headAnswer(nonce []byte, size int64) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("x-amz-meta-"+metaObjectID, hex.EncodeToString(nonce))
		w.WriteHeader(http.StatusOK)
	}
}

func statusAnswer(status int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(status) }
}

// TestCommitFaults checks CommitObject against answers versitygw does not give on demand: a
// 200 carrying an error (the SDK must turn it into a failure, which is retried), a lost
// answer followed by NoSuchUpload (the object of this handle is returned), and objects
// under the key that are not this handle's.
func TestCommitFaults(t *testing.T) {
	h := testHandle()
	h.spec.SHA256 = nil
	other := make([]byte, nonceLen)
	ok := headAnswer(h.nonce, h.spec.Size)
	cases := map[string]struct {
		complete  []func(http.ResponseWriter)
		head      func(http.ResponseWriter)
		want      error // nil: success
		completes int32 // calls of CompleteMultipartUpload expected
	}{
		"200ErrorAlways":     {[]func(http.ResponseWriter){xmlAnswer(200, complete200Error)}, ok, sdk.ErrUnavailable, 3},
		"200ErrorThenOK":     {[]func(http.ResponseWriter){xmlAnswer(200, complete200Error), xmlAnswer(200, completeOK)}, ok, nil, 2},
		"LostAnswer":         {[]func(http.ResponseWriter){xmlAnswer(404, noSuchUpload)}, ok, nil, 1},
		"GoneNoObject":       {[]func(http.ResponseWriter){xmlAnswer(404, noSuchUpload)}, statusAnswer(404), sdk.ErrNotFound, 1},
		"GoneOtherObject":    {[]func(http.ResponseWriter){xmlAnswer(404, noSuchUpload)}, headAnswer(other, h.spec.Size), sdk.ErrNotFound, 1},
		"GoneOtherSize":      {[]func(http.ResponseWriter){xmlAnswer(404, noSuchUpload)}, headAnswer(h.nonce, 1), sdk.ErrNotFound, 1},
		"GoneHeadFails":      {[]func(http.ResponseWriter){xmlAnswer(404, noSuchUpload)}, statusAnswer(503), sdk.ErrUnavailable, 1},
		"OKButOtherObject":   {[]func(http.ResponseWriter){xmlAnswer(200, completeOK)}, headAnswer(other, h.spec.Size), sdk.ErrNotFound, 1},
		"OKAndOurs":          {[]func(http.ResponseWriter){xmlAnswer(200, completeOK)}, ok, nil, 1},
		"InvalidPartIsStale": {[]func(http.ResponseWriter){xmlAnswer(400, `<Error><Code>InvalidPart</Code></Error>`)}, ok, sdk.ErrStaleReceipt, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			fs := &faultServer{complete: tc.complete, head: tc.head}
			srv := httptest.NewServer(fs)
			defer srv.Close()
			st, err := New(t.Context(), Config{Endpoint: srv.URL, Bucket: h.bucket, Region: "us-east-1", ForcePathStyle: true,
				AccessKeyID: "key", SecretAccessKey: "secret"}, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			receipts := make([][]byte, h.spec.PartCount)
			for i := range receipts {
				sum := sha256.Sum256([]byte{byte(i)})
				receipts[i] = (&receipt{number: i, etag: `"0123456789abcdef0123456789abcdef"`, sha256: sum[:]}).encode()
			}
			sum := sha256.Sum256([]byte("object"))
			obj, err := st.CommitObject(t.Context(), h.encode(), receipts, sum[:])
			switch {
			case tc.want == nil && err != nil:
				t.Errorf("CommitObject: %v", err)
			case tc.want == nil && (obj.Key != h.key || obj.Size != h.spec.Size):
				t.Errorf("CommitObject returned %+v", obj)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("CommitObject: got %v (object %+v), want an error wrapping %v", err, obj, tc.want)
			}
			if got := fs.completes.Load(); got != tc.completes {
				t.Errorf("CompleteMultipartUpload called %d times, want %d", got, tc.completes)
			}
		})
	}
}
