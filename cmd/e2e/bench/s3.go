package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Same part size and concurrency as the S3 plugin's defaults, so the baseline does the
// same work over the network.
const (
	s3PartSize    = 16 << 20
	s3Concurrency = 4
)

func init() { register(section{name: "s3", order: 30, run: (*bench).s3}) }

// s3 measures delivery to S3 against a direct multipart upload of the same staged bytes.
// It is skipped (and says so) when no S3 server is configured.
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
		"S3_REGION": region, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret})
	if err != nil {
		return err
	}
	staged, id, err := b.uploadBig(srv, "big/s3.bin")
	if err != nil {
		return err
	}
	direct, err := timed(func() error { return multipart(ctx, client, bucket, "baseline.bin", staged) })
	if err != nil {
		return fmt.Errorf("direct multipart upload: %w", err)
	}
	ours, err := timed(func() error { _, err := srv.complete(id); return err })
	if err != nil {
		return err
	}
	b.add(result{Name: fmt.Sprintf("delivery of %d MiB to S3 (versitygw)", b.deliverySize>>20), Value: ours.Seconds(), Unit: "s",
		Baseline: direct.Seconds(), Ratio: ours.Seconds() / direct.Seconds(),
		Note: fmt.Sprintf("baseline: AWS SDK multipart, %d MiB parts x %d; %.0f MB/s", s3PartSize>>20, s3Concurrency,
			float64(b.deliverySize)/ours.Seconds()/1e6)})
	hostRSS, pluginRSS := srv.peakRSS()
	b.add(result{Name: "host peak RSS (S3 run)", Value: mib(hostRSS), Unit: "MiB"})
	b.add(result{Name: "S3 plugin peak RSS", Value: mib(pluginRSS), Unit: "MiB",
		Note: fmt.Sprintf("documented buffers: %d MiB parts x %d", s3PartSize>>20, s3Concurrency)})
	return nil
}

// multipart uploads the concatenation of files to bucket/key.
func multipart(ctx context.Context, c *s3.Client, bucket, key string, files []string) error {
	mu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return err
	}
	readers := make([]io.Reader, 0, len(files))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return err
		}
		defer fh.Close()
		readers = append(readers, fh)
	}
	src := io.MultiReader(readers...)
	var mux sync.Mutex
	var parts []types.CompletedPart
	var first error
	sem := make(chan struct{}, s3Concurrency)
	var wg sync.WaitGroup
	for n := int32(1); ; n++ {
		buf := make([]byte, s3PartSize)
		m, rerr := io.ReadFull(src, buf)
		if m == 0 {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(n int32, data []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
				PartNumber: aws.Int32(n), Body: bytes.NewReader(data)})
			mux.Lock()
			defer mux.Unlock()
			if err != nil && first == nil {
				first = err
			}
			if err == nil {
				parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
			}
		}(n, buf[:m])
		if rerr != nil {
			break
		}
	}
	wg.Wait()
	if first != nil {
		c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId})
		return first
	}
	sortParts(parts)
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}

func sortParts(p []types.CompletedPart) {
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && *p[j].PartNumber < *p[j-1].PartNumber; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
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
