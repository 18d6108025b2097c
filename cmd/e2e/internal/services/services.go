// Package services reaches the real test services (versitygw S3 of the TEST_S3_* variables)
// directly, with the AWS SDK, for the end-to-end tests of module cmd/e2e: a test makes a
// bucket of its own and reads back what a host delivered. It lives in module cmd/e2e so
// that neither the host nor module cmd link the AWS SDK.
package services

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Timeout bounds one call of the test's own S3 or SMB client.
const Timeout = 2 * time.Minute

// SkipOrFail fails the test because a test service is not configured (vars names the
// variables missing, with their verb: "X and Y are"), or skips it under -short.
func SkipOrFail(tb testing.TB, vars string) {
	tb.Helper()
	if testing.Short() {
		tb.Skipf("%s not set; skipped under -short only (without -short this fails)", vars)
	}
	tb.Fatalf("%s not set: this test needs the real test services.\n"+
		"From the repository root: `bash scripts/test-services.sh start` and `eval \"$(bash scripts/test-services.sh env)\"`.", vars)
}

// CleanupReporter is how a cleanup reports a failure: as an error, unless the test failed
// already (its server may be the reason, and down).
func CleanupReporter(tb testing.TB) func(format string, args ...any) {
	if tb.Failed() {
		return tb.Logf
	}
	return tb.Errorf
}

// RandomName returns prefix followed by 12 random hex digits.
func RandomName(prefix string) string {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	return prefix + hex.EncodeToString(rnd[:])
}

// S3 is an S3 server and its credentials.
type S3 struct {
	Endpoint, AccessKey, SecretKey, Region string
}

// SharedS3 is the S3 server of the TEST_S3_* variables (see SkipOrFail without them).
func SharedS3(tb testing.TB) S3 {
	tb.Helper()
	svc := S3{
		Endpoint:  os.Getenv("TEST_S3_ENDPOINT"),
		AccessKey: os.Getenv("TEST_S3_ACCESS_KEY"),
		SecretKey: os.Getenv("TEST_S3_SECRET_KEY"),
		Region:    os.Getenv("TEST_S3_REGION"),
	}
	if svc.Endpoint == "" || svc.AccessKey == "" || svc.SecretKey == "" {
		SkipOrFail(tb, "TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY are")
	}
	if svc.Region == "" {
		svc.Region = "us-east-1"
	}
	return svc
}

// Client is a path-style client of the server.
func (svc S3) Client() *s3.Client {
	return NewS3Client(svc.Endpoint, svc.Region, svc.AccessKey, svc.SecretKey)
}

// NewS3Client is a path-style client of the S3 server at endpoint.
func NewS3Client(endpoint, region, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

// NewBucket creates a bucket named prefix plus random digits and removes it, with
// everything in it, when the test ends.
func (svc S3) NewBucket(tb testing.TB, prefix string) string {
	tb.Helper()
	bucket := RandomName(prefix)
	c := svc.Client()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		tb.Fatalf("CreateBucket %s on %s: %v", bucket, svc.Endpoint, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		report := CleanupReporter(tb)
		if err := EmptyBucket(ctx, c, bucket); err != nil {
			report("emptying bucket %s: %v", bucket, err)
			return
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			report("DeleteBucket %s: %v", bucket, err)
		}
	})
	return bucket
}

// EmptyBucket aborts every multipart upload and deletes every object of bucket.
func EmptyBucket(ctx context.Context, c *s3.Client, bucket string) error {
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		return err
	}
	for _, u := range uploads.Uploads {
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil {
			return err
		}
	}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseS3URL splits s3://bucket/key, a final_path of the s3 backend.
func ParseS3URL(loc string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(loc, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3:// URL", loc)
	}
	bucket, key, ok = strings.Cut(rest, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", fmt.Errorf("%q is not s3://bucket/key", loc)
	}
	return bucket, key, nil
}
