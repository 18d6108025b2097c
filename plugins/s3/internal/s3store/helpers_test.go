package s3store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// server describes the S3 server the tests use, from the TEST_S3_* variables that
// scripts/test-services.sh writes.
type server struct {
	endpoint, accessKey, secretKey, region string
}

// testServer returns the test server or fails the test (plugintest.RequireEnv).
func testServer(t testing.TB) server {
	t.Helper()
	env := plugintest.RequireEnv(t, "S3 server", "TEST_S3_ENDPOINT", "TEST_S3_ACCESS_KEY", "TEST_S3_SECRET_KEY")
	s := server{endpoint: env[0], accessKey: env[1], secretKey: env[2], region: os.Getenv("TEST_S3_REGION")}
	if s.region == "" {
		s.region = "us-east-1"
	}
	return s
}

// settings returns the plugin settings for bucket on the test server.
func (s server) settings(bucket string) sdk.Config {
	return sdk.Config{
		"S3_ENDPOINT":           s.endpoint,
		"S3_BUCKET":             bucket,
		"S3_REGION":             s.region,
		"AWS_ACCESS_KEY_ID":     s.accessKey,
		"AWS_SECRET_ACCESS_KEY": s.secretKey,
	}
}

// client returns an S3 client of its own, independent of the store under test.
func (s server) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.region,
		BaseEndpoint: aws.String(s.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.accessKey, s.secretKey, ""),
	})
}

// newBucket creates a bucket with a unique name and removes it, with everything in it, when
// the test ends.
func (s server) newBucket(t testing.TB) string {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	bucket := "cu-test-" + hex.EncodeToString(rnd[:])
	c := s.client()
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket %s: %v", bucket, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := emptyBucket(ctx, c, bucket); err != nil {
			t.Errorf("emptying bucket %s: %v", bucket, err)
			return
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			t.Errorf("DeleteBucket %s: %v", bucket, err)
		}
	})
	return bucket
}

// emptyBucket aborts every multipart upload and deletes every object of bucket.
func emptyBucket(ctx context.Context, c *s3.Client, bucket string) error {
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

// listNames returns the keys of the objects in bucket and of its multipart uploads in
// progress, so leftover parts show up as names too.
func listNames(ctx context.Context, c *s3.Client, bucket string) ([]string, error) {
	var names []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			names = append(names, aws.ToString(o.Key))
		}
	}
	uploads, err := listUploads(ctx, c, bucket)
	if err != nil {
		return nil, err
	}
	for _, u := range uploads {
		names = append(names, fmt.Sprintf("%s (multipart upload %s in progress)", aws.ToString(u.Key), aws.ToString(u.UploadId)))
	}
	return names, nil
}

func listUploads(ctx context.Context, c *s3.Client, bucket string) ([]types.MultipartUpload, error) {
	out, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		return nil, err
	}
	return out.Uploads, nil
}

// openStore builds a Store through Open, as the plugin does on Configure.
func openStore(t testing.TB, cfg sdk.Config) *Store {
	t.Helper()
	st, err := Open(t.Context(), cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return st.(*Store)
}

// isNotFound reports whether err is S3's answer for a missing object.
func isNotFound(err error) bool {
	var nf *types.NotFound
	var nk *types.NoSuchKey
	return errors.As(err, &nf) || errors.As(err, &nk)
}
