package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// completeFloor measures the floor of a part-wise commit on an S3 server: it uploads an
// object of size bytes in parts of partSize straight to bucket with the AWS SDK, as the S3
// plugin stores them (a multipart upload with the SHA-256 checksum algorithm, each part
// with its checksum, four parts at a time), then times CompleteMultipartUpload of all of
// them alone. It returns that time and the number of parts, and deletes the object (or
// aborts the upload) before returning.
//
// Complete does work that grows with the object on some servers (versitygw copies the parts
// into the object file), so compare it with a commit of the same part count and size.
func completeFloor(ctx context.Context, c *s3.Client, bucket string, size, partSize int64) (time.Duration, int, error) {
	if size <= 0 || partSize < 5<<20 {
		return 0, 0, fmt.Errorf("complete floor: %d bytes in parts of %d: need a non-empty object and parts of at least 5 MiB", size, partSize)
	}
	count := int((size + partSize - 1) / partSize)
	key := fmt.Sprintf("complete-floor-%d.bin", time.Now().UnixNano())
	mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key,
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if err != nil {
		return 0, 0, fmt.Errorf("complete floor: create multipart upload: %w", err)
	}
	abort := func() {
		c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId})
	}
	// Every full part has the same random content: one buffer, shared read-only.
	full := make([]byte, min(partSize, size))
	_, _ = rand.Read(full)
	checksum := func(b []byte) *string {
		s := sha256.Sum256(b)
		return aws.String(base64.StdEncoding.EncodeToString(s[:]))
	}
	fullSum, last := checksum(full), size-int64(count-1)*partSize
	parts := make([]types.CompletedPart, count)
	errs := make([]error, count)
	next := make(chan int)
	var wg sync.WaitGroup
	for range s3Concurrency {
		wg.Go(func() {
			for i := range next {
				body, sum := full, fullSum
				if i == count-1 && last != int64(len(full)) {
					body, sum = full[:last], checksum(full[:last])
				}
				out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
					ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: sum})
				if err != nil {
					errs[i] = fmt.Errorf("part %d: %w", i+1, err)
					continue
				}
				parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag, ChecksumSHA256: sum}
			}
		})
	}
	for i := range count {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			abort()
			return 0, 0, fmt.Errorf("complete floor: upload %w", err)
		}
	}
	start := time.Now()
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	took := time.Since(start)
	if err != nil {
		abort()
		return 0, 0, fmt.Errorf("complete floor: complete multipart upload of %d parts: %w", count, err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		return 0, 0, fmt.Errorf("complete floor: delete %s: %w", key, err)
	}
	return took, count, nil
}
