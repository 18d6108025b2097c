package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func testHandle() *handle {
	sum := sha256.Sum256([]byte("object"))
	return &handle{
		bucket: "uploads", key: "dir/object.bin", uploadID: "8ba1c3a4-3a5f-4b36-9f2a-7d5d2b1c9e10",
		nonce: bytes.Repeat([]byte{7}, nonceLen), sha256Parts: true,
		spec: sdk.ObjectSpec{Size: 100<<20 + 1, PartSize: 50 << 20, PartCount: 3, SHA256: sum[:]},
	}
}

// TestHandleRoundTrip: a handle decodes to what was encoded, with and without a declared
// digest, and fits the sdk's limit even at its largest.
func TestHandleRoundTrip(t *testing.T) {
	st := &Store{cfg: Config{Bucket: "uploads"}}
	noSum := testHandle()
	noSum.spec.SHA256, noSum.sha256Parts = nil, false
	largest := testHandle()
	largest.bucket = string(bytes.Repeat([]byte("b"), 255))
	largest.key = string(bytes.Repeat([]byte("k/"), sdk.MaxKeyLength/2-1)) + "kk"
	largest.uploadID = string(bytes.Repeat([]byte("u"), maxUploadIDLen))
	for name, h := range map[string]*handle{"Declared": testHandle(), "NoDigest": noSum, "Largest": largest} {
		t.Run(name, func(t *testing.T) {
			b := h.encode()
			if len(b) > sdk.MaxHandleSize {
				t.Errorf("handle of %d bytes, more than sdk.MaxHandleSize (%d)", len(b), sdk.MaxHandleSize)
			}
			got, err := parseHandle(b)
			if err != nil {
				t.Fatalf("parseHandle: %v", err)
			}
			if !reflect.DeepEqual(got, h) {
				t.Errorf("decoded %+v, want %+v", got, h)
			}
		})
	}
	if _, err := st.decodeHandle(testHandle().encode()); err != nil {
		t.Errorf("decodeHandle of this bucket's handle: %v", err)
	}
	other := &Store{cfg: Config{Bucket: "elsewhere"}}
	if _, err := other.decodeHandle(testHandle().encode()); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("decodeHandle of another bucket's handle: got %v, want ErrNotFound", err)
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	sum := sha256.Sum256([]byte("part"))
	r := &receipt{number: 9999, etag: `"3349dc700140d7f86a078484278075a9"`, sha256: sum[:]}
	b := r.encode()
	if len(b) > sdk.MaxReceiptSize {
		t.Errorf("receipt of %d bytes, more than sdk.MaxReceiptSize", len(b))
	}
	got, err := decodeReceipt(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("decodeReceipt = %+v, %v; want %+v", got, err, r)
	}
	for name, bad := range map[string][]byte{
		"Empty": nil, "Truncated": b[:len(b)-1], "Trailing": append(bytes.Clone(b), 1), "Version": append([]byte{9}, b[1:]...),
		"PartTooHigh": (&receipt{number: maxParts, etag: `"x"`, sha256: sum[:]}).encode(),
		"NoETag":      (&receipt{number: 1, sha256: sum[:]}).encode(),
		"ControlETag": (&receipt{number: 1, etag: "a\nb", sha256: sum[:]}).encode(),
	} {
		if _, err := decodeReceipt(bad); !errors.Is(err, sdk.ErrStaleReceipt) {
			t.Errorf("%s: decodeReceipt: got %v, want ErrStaleReceipt", name, err)
		}
	}
}

// FuzzHandle: decoding never panics, and whatever decodes encodes back to the same bytes
// and passes the checks.
func FuzzHandle(f *testing.F) {
	f.Add(testHandle().encode())
	f.Add([]byte{handleV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHandle(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.encode(), b) {
			t.Errorf("%x decodes to %+v, which encodes to %x", b, h, h.encode())
		}
		if sdk.ValidKey(h.key) != nil || checkSpec(h.spec) != nil || !printable(h.uploadID) {
			t.Errorf("decoded a handle that fails the checks: %+v", h)
		}
	})
}

// TestHoldbackReader: the last byte comes out only after the source reported io.EOF; a
// source that fails instead never gets its last byte sent.
func TestHoldbackReader(t *testing.T) {
	data := plugintest.Pattern(100_000)
	errLate := errors.New("the bytes are not the part's")
	cases := map[string]struct {
		r    io.Reader
		want error
	}{
		"Exact":       {bytes.NewReader(data), nil},
		"OneByte":     {iotest.OneByteReader(bytes.NewReader(data)), nil},
		"DataWithEOF": {iotest.DataErrReader(bytes.NewReader(data)), nil},
		"FailsAtEnd":  {io.MultiReader(bytes.NewReader(data), iotest.ErrReader(errLate)), errLate},
		"FailsMidway": {io.MultiReader(bytes.NewReader(data[:500]), iotest.ErrReader(errLate)), errLate},
		"Short":       {bytes.NewReader(data[:len(data)-1]), sdk.ErrSizeMismatch},
		"Long":        {io.MultiReader(bytes.NewReader(data), bytes.NewReader([]byte{1})), sdk.ErrSizeMismatch},
		"ShortByOne":  {iotest.OneByteReader(bytes.NewReader(data[:len(data)-1])), sdk.ErrSizeMismatch},
		"TimeoutOnce": {iotest.TimeoutReader(bytes.NewReader(data)), iotest.ErrTimeout},
		"HalfReader":  {iotest.HalfReader(bytes.NewReader(data)), nil},
		"EmptySource": {bytes.NewReader(nil), sdk.ErrSizeMismatch},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			hr := &holdbackReader{r: tc.r, left: int64(len(data))}
			got, err := io.ReadAll(hr)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadAll: got %v, want %v", err, tc.want)
			}
			if cerr := hr.close(); !errors.Is(cerr, tc.want) {
				t.Errorf("close: got %v, want %v", cerr, tc.want)
			}
			if tc.want != nil && len(got) >= len(data) {
				t.Errorf("handed out %d of %d bytes from a failing source: the body would be complete", len(got), len(data))
			}
			if tc.want == nil && !bytes.Equal(got, data) {
				t.Errorf("handed out %d bytes, not the %d of the source", len(got), len(data))
			}
			if n, err := hr.Read(make([]byte, 10)); n != 0 || !errors.Is(err, errBodyClosed) {
				t.Errorf("Read after close = %d, %v; want 0, errBodyClosed", n, err)
			}
		})
	}
}

// TestHoldbackReaderCancelled: a context that ended by the time the source reported io.EOF
// (as the host's cancelled stream does at its very end) keeps the last byte back.
func TestHoldbackReaderCancelled(t *testing.T) {
	data := plugintest.Pattern(100_000)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hr := &holdbackReader{ctx: ctx, r: &cancelAtEOF{r: bytes.NewReader(data), cancel: cancel}, left: int64(len(data))}
	got, err := io.ReadAll(hr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAll: got %v, want context.Canceled", err)
	}
	if len(got) >= len(data) {
		t.Errorf("handed out %d of %d bytes after the context ended: the body would be complete", len(got), len(data))
	}
}

// cancelAtEOF reads r and calls cancel when r reports io.EOF.
type cancelAtEOF struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

// TestPartLimitsAnnounced: the plugin announces S3's limits when configured.
func TestPartLimitsAnnounced(t *testing.T) {
	st, err := New(t.Context(), Config{Bucket: "uploads", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b"}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.PartLimits(); got != (sdk.PartLimits{MinPartSize: 5 << 20, MaxParts: 10000}) {
		t.Errorf("PartLimits = %+v", got)
	}
}
