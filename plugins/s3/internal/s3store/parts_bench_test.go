package s3store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// BenchmarkCommitObject times the commit of an object of S3_BENCH_PARTS parts (default 40)
// of S3_BENCH_PART_MB MiB (default 50, the host's part size): CommitObject (one
// CompleteMultipartUpload and the HeadObject that checks it), and CompleteMultipartUpload
// of an upload of the same parts made directly with the AWS SDK, the floor. Uploading the
// parts is not timed. Run it with
//
//	go test -run '^$' -bench CommitObject -benchtime 1x ./internal/s3store
func BenchmarkCommitObject(b *testing.B) {
	count, partMiB := benchEnv(b, "S3_BENCH_PARTS", 40), benchEnv(b, "S3_BENCH_PART_MB", 50)
	e := &partEnv{srv: testServer(b)}
	e.bucket = e.srv.newBucket(b)
	e.admin, e.st = e.srv.client(), openStore(b, e.srv.settings(e.bucket))
	part := plugintest.NewBlockReader(int64(partMiB) << 20)
	data := make([]byte, partMiB<<20)
	if _, err := io.ReadFull(part, data); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	spec := sdk.ObjectSpec{Size: int64(count) * int64(len(data)), PartSize: int64(len(data)), PartCount: count}
	whole := sha256.New()
	for range count {
		whole.Write(data)
	}
	var ours, direct time.Duration
	for i := 0; b.Loop(); i++ {
		key := "bench/commit-" + strconv.Itoa(i)
		h, err := e.st.BeginObject(b.Context(), key, spec)
		if err != nil {
			b.Fatal(err)
		}
		receipts := make([][]byte, count)
		parallel(b, count, func(n int) error {
			var err error
			receipts[n], err = e.st.PutPart(b.Context(), h, sdk.PartInfo{Number: n, Size: int64(len(data)), SHA256: sum[:]}, bytes.NewReader(data))
			return err
		})
		start := time.Now()
		if _, err := e.st.CommitObject(b.Context(), h, receipts, whole.Sum(nil)); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(start)

		// The same parts straight through the SDK, as the floor.
		key += "-direct"
		mu, err := e.admin.CreateMultipartUpload(b.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String(key),
			ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
		if err != nil {
			b.Fatal(err)
		}
		checksum := aws.String(base64.StdEncoding.EncodeToString(sum[:]))
		parts := make([]types.CompletedPart, count)
		parallel(b, count, func(n int) error {
			out, err := e.admin.UploadPart(b.Context(), &s3.UploadPartInput{Bucket: aws.String(e.bucket), Key: aws.String(key), UploadId: mu.UploadId,
				PartNumber: aws.Int32(int32(n + 1)), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
				ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: checksum})
			if err == nil {
				parts[n] = types.CompletedPart{PartNumber: aws.Int32(int32(n + 1)), ETag: out.ETag, ChecksumSHA256: checksum}
			}
			return err
		})
		start = time.Now()
		if _, err := e.admin.CompleteMultipartUpload(b.Context(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String(key),
			UploadId: mu.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			b.Fatal(err)
		}
		direct += time.Since(start)
		for _, k := range []string{key, key[:len(key)-len("-direct")]} {
			if err := e.st.Delete(b.Context(), k); err != nil {
				b.Fatal(err)
			}
		}
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64((ours / n).Milliseconds()), "ms/commit")
	b.ReportMetric(float64((direct / n).Milliseconds()), "ms/complete-direct")
	b.Logf("%d parts of %d MiB: CommitObject %v, CompleteMultipartUpload with the AWS SDK %v (mean of %d)",
		count, partMiB, (ours / n).Round(time.Millisecond), (direct / n).Round(time.Millisecond), b.N)
}

func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxParts {
		b.Fatalf("%s=%q: want a number from 1 to %d", name, v, maxParts)
	}
	return n
}

// parallel runs f(0..n-1), four at a time, and fails b on the first error.
func parallel(b *testing.B, n int, f func(int) error) {
	next := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("part %d: %v", i, err)
		}
	}
}
