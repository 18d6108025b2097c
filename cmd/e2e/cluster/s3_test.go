package cluster

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/services"
)

// nodeEnv is the environment that makes a node deliver to bucket.
func nodeEnv(svc services.S3, bucket string) map[string]string {
	return map[string]string{
		"STORAGE_BACKEND":       "s3",
		"S3_ENDPOINT":           svc.Endpoint,
		"S3_BUCKET":             bucket,
		"S3_REGION":             svc.Region,
		"S3_FORCE_PATH_STYLE":   "true",
		"S3_PART_SIZE_MB":       "5",
		"AWS_ACCESS_KEY_ID":     svc.AccessKey,
		"AWS_SECRET_ACCESS_KEY": svc.SecretKey,
	}
}

// object reads the object final_path names (s3://bucket/key) back from the server.
func object(tb testing.TB, svc services.S3, finalPath string) []byte {
	tb.Helper()
	bucket, key, err := services.ParseS3URL(finalPath)
	if err != nil {
		tb.Fatalf("final_path: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := svc.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
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

// checkDelivered asserts that final_path (read from svc) holds exactly data, in bucket, under a key that
// carries the upload's id.
func checkDelivered(tb testing.TB, svc services.S3, bucket, id, finalPath string, data []byte) {
	tb.Helper()
	if !strings.HasPrefix(finalPath, "s3://"+bucket+"/") || !strings.Contains(finalPath, id+"_") {
		tb.Errorf("final_path %q: want s3://%s/.../%s_<name>", finalPath, bucket, id)
		return
	}
	got := object(tb, svc, finalPath)
	if !bytes.Equal(got, data) {
		tb.Errorf("%s: %d bytes differ from the %d bytes sent", finalPath, len(got), len(data))
	}
}
