package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func TestConformance(t *testing.T) {
	srv := testServer(t)
	admin := srv.client()
	var bucket string // the bucket of the store New returned last
	o := storagetest.Options{
		New: func(t *testing.T) sdk.Storage {
			bucket = srv.newBucket(t)
			cfg := srv.settings(bucket)
			// Small parts keep the Large case (64 MiB) multipart and its memory well within
			// the suite's heap bound (32 MiB), which over gRPC must also hold the chunks in
			// gRPC's flow-control windows: one 5 MiB part at a time. TestMultipart covers
			// concurrent parts.
			cfg["S3_PART_SIZE_MB"] = "5"
			cfg["S3_CONCURRENCY"] = "1"
			return openStore(t, cfg)
		},
		// A new client over the same bucket: a plugin restart.
		Reopen: func(t *testing.T) sdk.Storage {
			cfg := srv.settings(bucket)
			cfg["S3_PART_SIZE_MB"] = "5"
			cfg["S3_CONCURRENCY"] = "1"
			return openStore(t, cfg)
		},
		ReadBack: func(t *testing.T, key string) (io.ReadCloser, error) {
			out, err := admin.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return nil, err
			}
			return out.Body, nil
		},
		List: func(t *testing.T) []string {
			names, err := listNames(t.Context(), admin, bucket)
			if err != nil {
				t.Fatalf("listing bucket %s: %v", bucket, err)
			}
			return names
		},
	}
	t.Run("Direct", func(t *testing.T) { storagetest.Run(t, o) })
	t.Run("GRPC", func(t *testing.T) { storagetest.RunGRPC(t, o) })
}

// TestMultipart checks that an object larger than a part goes up as a multipart upload of
// the expected number of parts and reads back intact.
func TestMultipart(t *testing.T) {
	srv := testServer(t)
	bucket := srv.newBucket(t)
	cfg := srv.settings(bucket)
	cfg["S3_PART_SIZE_MB"] = "5"
	st := openStore(t, cfg)

	const key = "multi/object.bin"
	b := plugintest.Pattern(23<<20 + 123) // 5 parts: 4 x 5 MiB + 3 MiB
	obj, err := st.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	sum := sha256.Sum256(b)
	if !bytes.Equal(obj.SHA256, sum[:]) || obj.Size != int64(len(b)) {
		t.Errorf("Put returned size %d sha256 %x, want %d and %x", obj.Size, obj.SHA256, len(b), sum)
	}
	if want := "s3://" + bucket + "/" + key; obj.Location != want {
		t.Errorf("Location = %q, want %q", obj.Location, want)
	}

	c := srv.client()
	head, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	// The ETag of a multipart object is "<md5 of the part md5s>-<number of parts>".
	if etag := strings.Trim(aws.ToString(head.ETag), `"`); !strings.HasSuffix(etag, "-5") {
		t.Errorf("ETag %q: want the ETag of a multipart object of 5 parts", etag)
	}
	if got := aws.ToInt64(head.ContentLength); got != int64(len(b)) {
		t.Errorf("ContentLength = %d, want %d", got, len(b))
	}
	out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("reading the object: %v", err)
	}
	if !bytes.Equal(got, b) {
		t.Errorf("read back %d bytes sha256 %x, want %d bytes sha256 %x", len(got), sha256.Sum256(got), len(b), sum)
	}
	if uploads, err := listUploads(t.Context(), c, bucket); err != nil || len(uploads) != 0 {
		t.Errorf("multipart uploads left in progress: %v (err %v)", uploads, err)
	}
}

// TestMultipartFailure checks that a multipart Put that fails after some parts were stored
// aborts the upload: no object and no upload in progress remain.
func TestMultipartFailure(t *testing.T) {
	srv := testServer(t)
	const size = 23<<20 + 123
	b := plugintest.Pattern(size)
	errBoom := errors.New("reader failed on purpose")
	tests := map[string]struct {
		reader func(cancel context.CancelFunc) io.Reader
		want   error
	}{
		"ReaderFails": {
			reader: func(context.CancelFunc) io.Reader {
				return io.MultiReader(bytes.NewReader(b[:12<<20]), iotest.ErrReader(errBoom))
			},
			want: errBoom,
		},
		"ShortReader": {
			reader: func(context.CancelFunc) io.Reader { return bytes.NewReader(b[:size-1]) },
			want:   sdk.ErrSizeMismatch,
		},
		"LongReader": {
			reader: func(context.CancelFunc) io.Reader { return io.MultiReader(bytes.NewReader(b), strings.NewReader("x")) },
			want:   sdk.ErrSizeMismatch,
		},
		"Cancelled": {
			reader: func(cancel context.CancelFunc) io.Reader {
				return io.MultiReader(bytes.NewReader(b[:17<<20]), readFunc(func([]byte) (int, error) { cancel(); return 0, io.EOF }), bytes.NewReader(b[17<<20:]))
			},
			want: context.Canceled,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bucket := srv.newBucket(t)
			cfg := srv.settings(bucket)
			cfg["S3_PART_SIZE_MB"] = "5"
			st := openStore(t, cfg)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			const key = "failing/object.bin"
			_, err := st.Put(ctx, key, tc.reader(cancel), size)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put: got error %v, want one wrapping %v", err, tc.want)
			}
			c := srv.client()
			uploads, err := listUploads(t.Context(), c, bucket)
			if err != nil {
				t.Fatalf("ListMultipartUploads: %v", err)
			}
			if len(uploads) != 0 {
				t.Errorf("%d multipart uploads left in progress, want none", len(uploads))
			}
			if _, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); !isNotFound(err) {
				t.Errorf("HeadObject after a failed Put: got %v, want NotFound", err)
			}
		})
	}
}

// TestStatSHA256 checks that Stat reports the digest of an object stored in one request.
func TestStatSHA256(t *testing.T) {
	srv := testServer(t)
	st := openStore(t, srv.settings(srv.newBucket(t)))
	b := plugintest.Pattern(1000)
	if _, err := st.Put(t.Context(), "small.bin", bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("Put: %v", err)
	}
	obj, err := st.Stat(t.Context(), "small.bin")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if sum := sha256.Sum256(b); !bytes.Equal(obj.SHA256, sum[:]) {
		t.Errorf("Stat SHA256 = %x, want %x", obj.SHA256, sum)
	}
}

func TestHealth(t *testing.T) {
	srv := testServer(t)
	bucket := srv.newBucket(t)
	tests := map[string]plugintest.HealthCase{
		"OK": {Change: func(sdk.Config) {}},
		"WrongSecret": {
			Change: func(c sdk.Config) { c["AWS_SECRET_ACCESS_KEY"] = "wrong-" + srv.secretKey },
			Want:   sdk.ErrPermission,
			Text:   "S3 rejected the credentials (SignatureDoesNotMatch)",
		},
		"UnknownAccessKey": {
			Change: func(c sdk.Config) { c["AWS_ACCESS_KEY_ID"] = "nosuchkey" },
			Want:   sdk.ErrPermission,
			Text:   "S3 rejected the credentials",
		},
		"MissingBucket": {
			Change: func(c sdk.Config) { c["S3_BUCKET"] = "cu-test-no-such-bucket" },
			Want:   sdk.ErrInvalidConfig,
			Text:   `bucket "cu-test-no-such-bucket" does not exist`,
		},
		"Unreachable": {
			Change: func(c sdk.Config) { c["S3_ENDPOINT"] = "http://127.0.0.1:1" },
			Want:   sdk.ErrUnavailable,
			Text:   "cannot reach S3 at http://127.0.0.1:1",
		},
	}
	plugintest.RunHealthCases(t, srv.settings(bucket), func(t *testing.T, c sdk.Config) sdk.HealthChecker { return openStore(t, c) }, tests)
	names, err := listNames(t.Context(), srv.client(), bucket)
	if err != nil || len(names) != 0 {
		t.Errorf("bucket holds %q after health checks (err %v), want nothing", names, err)
	}
}

// TestPutErrors checks the errors of Put, Stat and Delete against a bucket that does not
// exist and with wrong credentials.
func TestPutErrors(t *testing.T) {
	srv := testServer(t)
	bucket := srv.newBucket(t)
	b := plugintest.Pattern(100)
	missing := srv.settings("cu-test-no-such-bucket")
	st := openStore(t, missing)
	if _, err := st.Put(t.Context(), "k", bytes.NewReader(b), int64(len(b))); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Errorf("Put into a missing bucket: got %v, want an error wrapping ErrInvalidConfig", err)
	}
	wrong := srv.settings(bucket)
	wrong["AWS_SECRET_ACCESS_KEY"] = "wrong"
	st = openStore(t, wrong)
	if _, err := st.Put(t.Context(), "k", bytes.NewReader(b), int64(len(b))); !errors.Is(err, sdk.ErrPermission) {
		t.Errorf("Put with a wrong secret: got %v, want an error wrapping ErrPermission", err)
	}
	if _, err := st.Stat(t.Context(), "k"); !errors.Is(err, sdk.ErrPermission) {
		t.Errorf("Stat with a wrong secret: got %v, want an error wrapping ErrPermission", err)
	}
	if err := st.Delete(t.Context(), "k"); !errors.Is(err, sdk.ErrPermission) {
		t.Errorf("Delete with a wrong secret: got %v, want an error wrapping ErrPermission", err)
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }
