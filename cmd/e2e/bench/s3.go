package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// s3Concurrency is the parts the S3 floor sends at once, as the host delivers an upload's
// parts (PART_DELIVERIES_PER_UPLOAD's default).
const s3Concurrency = 4

func init() { register(section{name: "s3", order: 30, run: (*bench).s3}) }

// s3 times complete after the last part of an upload to S3, as delivery does for local,
// against the floor of the S3 server's own CompleteMultipartUpload of as many parts of the
// same size (see completeFloor). It is skipped (and says so) when no S3 server is
// configured.
func (b *bench) s3() error {
	endpoint := os.Getenv("TEST_S3_ENDPOINT")
	if endpoint == "" {
		b.add(result{Name: "delivery to S3", Note: "skipped: TEST_S3_* not set (run scripts/test-services.sh start)"})
		return nil
	}
	ctx := context.Background()
	key, secret, region := os.Getenv("TEST_S3_ACCESS_KEY"), os.Getenv("TEST_S3_SECRET_KEY"), os.Getenv("TEST_S3_REGION")
	client := s3.NewFromConfig(aws.Config{Region: region, Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	bucket := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		return err
	}
	defer emptyAndDelete(ctx, client, bucket)
	srv, err := b.start("s3", map[string]string{"STORAGE_BACKEND": "s3", "S3_ENDPOINT": endpoint, "S3_BUCKET": bucket,
		"S3_REGION": region, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "COMPLETE_WAIT_SECONDS": "300"})
	if err != nil {
		return err
	}
	if _, err := b.completeAfterUpload(srv, "big/s3.bin", "S3 (versitygw)"); err != nil {
		return err
	}
	floor, parts, err := completeFloor(ctx, client, bucket, b.deliverySize, partSize)
	if err != nil {
		return err
	}
	b.add(result{Name: "S3 CompleteMultipartUpload alone (the floor of complete)", Value: floor.Seconds(), Unit: "s",
		Note: fmt.Sprintf("%d parts of %d MiB sent straight with the AWS SDK, then only the complete timed", parts, partSize>>20)})
	hostRSS, pluginRSS := srv.peakRSS()
	b.add(result{Name: "host peak RSS (S3 run)", Value: mib(hostRSS), Unit: "MiB"})
	b.add(result{Name: "S3 plugin peak RSS", Value: mib(pluginRSS), Unit: "MiB"})
	return nil
}

func emptyAndDelete(ctx context.Context, c *s3.Client, bucket string) {
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err == nil {
		for _, o := range out.Contents {
			c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key})
		}
	}
	c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket})
}
