package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestCompleteFloor runs completeFloor on a small object against the S3 server of the
// TEST_S3_* variables and checks that it leaves the bucket empty.
func TestCompleteFloor(t *testing.T) {
	endpoint := os.Getenv("TEST_S3_ENDPOINT")
	if endpoint == "" {
		t.Fatal("TEST_S3_ENDPOINT is not set: run scripts/test-services.sh start and source its env.sh")
	}
	c := s3.NewFromConfig(aws.Config{Region: os.Getenv("TEST_S3_REGION"),
		Credentials: credentials.NewStaticCredentialsProvider(os.Getenv("TEST_S3_ACCESS_KEY"), os.Getenv("TEST_S3_SECRET_KEY"), "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	bucket := fmt.Sprintf("bench-floor-%d", time.Now().UnixNano())
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	t.Cleanup(func() { emptyAndDelete(context.Background(), c, bucket) })

	took, parts, err := completeFloor(t.Context(), c, bucket, 3*(5<<20)+1, 5<<20)
	if err != nil {
		t.Fatalf("completeFloor: %v", err)
	}
	if parts != 4 || took <= 0 {
		t.Errorf("completeFloor = %v for %d parts, want a duration for 4 parts", took, parts)
	}
	t.Logf("CompleteMultipartUpload of %d parts: %v", parts, took)
	objects, err := c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil || len(objects.Contents) != 0 {
		t.Errorf("bucket holds %d objects after completeFloor (err %v), want none", len(objects.Contents), err)
	}
	uploads, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil || len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left (err %v), want none", len(uploads.Uploads), err)
	}
	if _, _, err := completeFloor(t.Context(), c, bucket, 1<<20, 1<<20); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("completeFloor with parts under 5 MiB: got %v, want an error", err)
	}
}
