package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Service is the S3 test server of the TEST_S3_* variables.
type s3Service struct {
	endpoint, accessKey, secretKey, region string
}

// sharedS3 reads the TEST_S3_* variables; the test fails without them.
func sharedS3(tb testing.TB) s3Service {
	tb.Helper()
	svc := s3Service{
		endpoint:  os.Getenv("TEST_S3_ENDPOINT"),
		accessKey: os.Getenv("TEST_S3_ACCESS_KEY"),
		secretKey: os.Getenv("TEST_S3_SECRET_KEY"),
		region:    os.Getenv("TEST_S3_REGION"),
	}
	if svc.endpoint == "" || svc.accessKey == "" || svc.secretKey == "" {
		tb.Fatal("TEST_S3_ENDPOINT, TEST_S3_ACCESS_KEY and TEST_S3_SECRET_KEY are not set: this test needs the real S3 test server.\n" +
			"From the repository root: `bash scripts/test-services.sh start` and `eval \"$(bash scripts/test-services.sh env)\"`.")
	}
	if svc.region == "" {
		svc.region = "us-east-1"
	}
	return svc
}

func (svc s3Service) client() *s3.Client {
	return s3.New(s3.Options{
		Region:       svc.region,
		BaseEndpoint: aws.String(svc.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(svc.accessKey, svc.secretKey, ""),
	})
}

// nodeEnv is the environment that makes a node deliver to bucket.
func (svc s3Service) nodeEnv(bucket string) map[string]string {
	return map[string]string{
		"STORAGE_BACKEND":       "s3",
		"S3_ENDPOINT":           svc.endpoint,
		"S3_BUCKET":             bucket,
		"S3_REGION":             svc.region,
		"S3_FORCE_PATH_STYLE":   "true",
		"S3_PART_SIZE_MB":       "5",
		"AWS_ACCESS_KEY_ID":     svc.accessKey,
		"AWS_SECRET_ACCESS_KEY": svc.secretKey,
	}
}

// newBucket creates a bucket with a unique name, emptied and removed when the test ends.
func (svc s3Service) newBucket(tb testing.TB) string {
	tb.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	bucket := "cluster-" + hex.EncodeToString(rnd[:])
	c := svc.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		tb.Fatalf("CreateBucket %s on %s: %v", bucket, svc.endpoint, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := emptyBucket(ctx, c, bucket); err != nil {
			tb.Logf("emptying bucket %s: %v", bucket, err)
			return
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil {
			tb.Logf("DeleteBucket %s: %v", bucket, err)
		}
	})
	return bucket
}

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

// object reads the object final_path names (s3://bucket/key) back from the server.
func (svc s3Service) object(tb testing.TB, finalPath string) []byte {
	tb.Helper()
	rest, ok := strings.CutPrefix(finalPath, "s3://")
	bucket, key, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		tb.Fatalf("final_path %q is not s3://bucket/key", finalPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := svc.client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		tb.Fatalf("GetObject %s: %v", finalPath, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		tb.Fatalf("reading %s: %v", finalPath, err)
	}
	return b
}

// checkDelivered asserts that final_path holds exactly data, in bucket, under a key that
// carries the upload's id.
func (svc s3Service) checkDelivered(tb testing.TB, bucket, id, finalPath string, data []byte) {
	tb.Helper()
	if !strings.HasPrefix(finalPath, "s3://"+bucket+"/") || !strings.Contains(finalPath, id+"_") {
		tb.Errorf("final_path %q: want s3://%s/.../%s_<name>", finalPath, bucket, id)
		return
	}
	got := svc.object(tb, finalPath)
	if !bytes.Equal(got, data) {
		tb.Errorf("%s: %d bytes differ from the %d bytes sent", finalPath, len(got), len(data))
	}
}
