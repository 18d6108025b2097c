package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/hirochachacha/go-smb2"
)

// A backend is one of the storage backends under test: the settings of a host that
// delivers to it, the backend's own delivery of an object written directly (no host, no
// plugin: the "delivery alone" baseline), and checks and cleanup of what was delivered.
type backend interface {
	name() string
	// hostEnv returns the settings of a host that stores into this backend.
	hostEnv() map[string]string
	// deliverAlone stores an object of size bytes (data repeated, in parts of len(data),
	// the last cut short) the way the backend's plugin stores a part-wise object, with
	// parallel parts at once, makes it visible, and removes it.
	deliverAlone(ctx context.Context, data []byte, size int64, parallel int) (*alone, error)
	// verify checks that the object at finalPath (complete's final_path, which must be
	// in this backend's area) holds size bytes, then removes it.
	verify(ctx context.Context, finalPath string, size int64) error
	close(ctx context.Context)
}

// alone is a "delivery alone" measurement.
type alone struct {
	PartsSeconds  float64    `json:"parts_seconds"`  // every part durable in the backend
	CommitSeconds float64    `json:"commit_seconds"` // making the object visible (S3: CompleteMultipartUpload, the floor)
	TotalSeconds  float64    `json:"total_seconds"`
	MBps          float64    `json:"parts_mb_per_s"` // size / PartsSeconds: the backend's own delivery speed
	Method        string     `json:"method"`
	LoadStart     [3]float64 `json:"load_average_start"`
	LoadEnd       [3]float64 `json:"load_average_end"`
}

// eachPart runs put(n) for the parts of an object of size bytes in parts of partSize,
// parallel at once, lowest first, and returns the first error.
func eachPart(size, partSize int64, parallel int, put func(n int, off, length int64) error) error {
	count := int((size + partSize - 1) / partSize)
	next := make(chan int)
	errs := make([]error, count)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for n := range next {
				off := int64(n) * partSize
				errs[n] = put(n, off, min(partSize, size-off))
			}
		})
	}
	for n := range count {
		next <- n
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

// timeAlone measures parts (every part stored) then commit.
func timeAlone(method string, parts, commit func() error) (*alone, error) {
	a := &alone{Method: method, LoadStart: loadAvg()}
	start := time.Now()
	if err := parts(); err != nil {
		return nil, err
	}
	mid := time.Now()
	if err := commit(); err != nil {
		return nil, err
	}
	end := time.Now()
	a.PartsSeconds, a.CommitSeconds, a.TotalSeconds = mid.Sub(start).Seconds(), end.Sub(mid).Seconds(), end.Sub(start).Seconds()
	a.LoadEnd = loadAvg()
	return a, nil
}

// ---- local ----

// localBackend is the local plugin's directory on the work disk.
type localBackend struct{ root string }

func (b *localBackend) name() string { return "local" }

func (b *localBackend) hostEnv() map[string]string {
	return map[string]string{"STORAGE_BACKEND": "local", "LOCAL_STORAGE_PATH": b.root}
}

// deliverAlone writes the parts as the local plugin does: each at its offset of a hidden
// file beside the target, with O_DIRECT in 4 MiB writes (data must be page-aligned), then
// fdatasync; then renames the file into place and syncs the directory.
func (b *localBackend) deliverAlone(_ context.Context, data []byte, size int64, parallel int) (*alone, error) {
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		return nil, err
	}
	tmp, dst := filepath.Join(b.root, ".alone.partial"), filepath.Join(b.root, "alone.bin")
	if err := os.WriteFile(tmp, nil, 0o644); err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	const block = 4 << 20
	a, err := timeAlone("O_DIRECT writes of 4 MiB at each part's offset of one file, fdatasync per part, rename + directory fsync",
		func() error {
			return eachPart(size, int64(len(data)), parallel, func(_ int, off, length int64) error {
				f, direct, err := openDirect(tmp)
				if err != nil {
					return err
				}
				defer f.Close()
				body := data[:length]
				for len(body) > 0 {
					n := min(len(body), block)
					if direct && n%4096 != 0 {
						// An unaligned tail goes buffered, as the plugin writes it.
						if err := f.Close(); err != nil {
							return err
						}
						if f, err = os.OpenFile(tmp, os.O_WRONLY, 0); err != nil {
							return err
						}
						defer f.Close()
						direct = false
					}
					if _, err := f.WriteAt(body[:n], off); err != nil {
						return fmt.Errorf("write at %d: %w", off, err)
					}
					body, off = body[n:], off+int64(n)
				}
				return datasync(f)
			})
		},
		func() error {
			if err := os.Rename(tmp, dst); err != nil {
				return err
			}
			d, err := os.Open(b.root)
			if err != nil {
				return err
			}
			defer d.Close()
			return d.Sync()
		})
	os.Remove(dst)
	if a != nil {
		a.MBps = float64(size) / 1e6 / a.PartsSeconds
	}
	return a, err
}

func (b *localBackend) verify(_ context.Context, finalPath string, size int64) error {
	if !strings.HasPrefix(finalPath, b.root+string(filepath.Separator)) {
		return fmt.Errorf("final_path %q is not under LOCAL_STORAGE_PATH %s", finalPath, b.root)
	}
	st, err := os.Stat(finalPath)
	if err != nil {
		return err
	}
	if st.Size() != size {
		return fmt.Errorf("%s holds %d bytes, want %d", finalPath, st.Size(), size)
	}
	return os.Remove(finalPath)
}

func (b *localBackend) close(context.Context) { os.RemoveAll(b.root) }

// ---- smb ----

// smbBackend is a directory of its own on the share of the TEST_SMB_* server.
type smbBackend struct {
	addr, user, pass, share string
	dir                     string // on the share
	conn                    net.Conn
	sess                    *smb2.Session
	fs                      *smb2.Share
}

func newSMB(dir string) (*smbBackend, error) {
	b := &smbBackend{addr: os.Getenv("TEST_SMB_ADDR"), user: os.Getenv("TEST_SMB_USER"), pass: os.Getenv("TEST_SMB_PASS"),
		share: os.Getenv("TEST_SMB_SHARE"), dir: dir}
	if b.addr == "" || b.share == "" {
		return nil, errors.New("TEST_SMB_ADDR and TEST_SMB_SHARE are not set: run scripts/test-services.sh start and source its env")
	}
	var err error
	if b.conn, err = net.DialTimeout("tcp", b.addr, 10*time.Second); err != nil {
		return nil, fmt.Errorf("smb: %w", err)
	}
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: b.user, Password: b.pass}}
	if b.sess, err = d.Dial(b.conn); err != nil {
		b.conn.Close()
		return nil, fmt.Errorf("smb login: %w", err)
	}
	if b.fs, err = b.sess.Mount(b.share); err != nil {
		b.sess.Logoff()
		b.conn.Close()
		return nil, fmt.Errorf("smb mount %s: %w", b.share, err)
	}
	if err := b.fs.MkdirAll(dir, 0o755); err != nil {
		b.close(context.Background())
		return nil, fmt.Errorf("smb mkdir %s: %w", dir, err)
	}
	return b, nil
}

func (b *smbBackend) name() string { return "smb" }

func (b *smbBackend) hostEnv() map[string]string {
	h, p, _ := net.SplitHostPort(b.addr)
	return map[string]string{"STORAGE_BACKEND": "smb", "SMB_HOST": h, "SMB_PORT": p, "SMB_USER": b.user,
		"SMB_PASS": b.pass, "SMB_SHARE": b.share, "SMB_PATH": b.dir}
}

// deliverAlone writes the parts as the smb plugin does, on one session: each at its offset
// of a hidden file, in 1 MiB writes with four in flight per part, then flushed; then renames
// the file into place.
func (b *smbBackend) deliverAlone(_ context.Context, data []byte, size int64, parallel int) (*alone, error) {
	tmp, dst := path.Join(b.dir, ".alone.partial"), path.Join(b.dir, "alone.bin")
	f, err := b.fs.Create(tmp)
	if err != nil {
		return nil, err
	}
	f.Close()
	defer b.fs.Remove(tmp)
	const chunk, depth = 1 << 20, 4
	a, err := timeAlone("go-smb2, one session: 1 MiB writes at each part's offset of one file, 4 in flight per part, flush per part, rename",
		func() error {
			return eachPart(size, int64(len(data)), parallel, func(_ int, off, length int64) error {
				f, err := b.fs.OpenFile(tmp, os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				defer f.Close()
				sem := make(chan struct{}, depth)
				var wg sync.WaitGroup
				var mu sync.Mutex
				var first error
				for o := int64(0); o < length; o += chunk {
					sem <- struct{}{}
					wg.Go(func() {
						defer func() { <-sem }()
						if _, err := f.WriteAt(data[o:min(o+chunk, length)], off+o); err != nil {
							mu.Lock()
							first = cmpErr(first, err)
							mu.Unlock()
						}
					})
				}
				wg.Wait()
				if first != nil {
					return first
				}
				return f.Sync()
			})
		},
		func() error { return b.fs.Rename(tmp, dst) })
	b.fs.Remove(dst)
	if a != nil {
		a.MBps = float64(size) / 1e6 / a.PartsSeconds
	}
	return a, err
}

func cmpErr(first, err error) error {
	if first == nil {
		return err
	}
	return first
}

func (b *smbBackend) verify(_ context.Context, finalPath string, size int64) error {
	prefix := "smb://" + b.addr + "/" + b.share + "/" + b.dir + "/"
	if !strings.HasPrefix(finalPath, prefix) {
		return fmt.Errorf("final_path %q is not under %s", finalPath, prefix)
	}
	name := path.Join(b.dir, strings.TrimPrefix(finalPath, prefix))
	st, err := b.fs.Stat(name)
	if err != nil {
		return fmt.Errorf("smb stat %s: %w", name, err)
	}
	if st.Size() != size {
		return fmt.Errorf("smb %s holds %d bytes, want %d", name, st.Size(), size)
	}
	return b.fs.Remove(name)
}

func (b *smbBackend) close(context.Context) {
	if b.fs != nil {
		b.fs.RemoveAll(b.dir)
		b.fs.Umount()
	}
	if b.sess != nil {
		b.sess.Logoff()
	}
	if b.conn != nil {
		b.conn.Close()
	}
}

// ---- s3 ----

// s3Backend is a bucket of its own on the TEST_S3_* server.
type s3Backend struct {
	endpoint, region, key, secret string
	bucket                        string
	c                             *s3.Client
}

func newS3(ctx context.Context, bucket string) (*s3Backend, error) {
	b := &s3Backend{endpoint: os.Getenv("TEST_S3_ENDPOINT"), region: os.Getenv("TEST_S3_REGION"),
		key: os.Getenv("TEST_S3_ACCESS_KEY"), secret: os.Getenv("TEST_S3_SECRET_KEY"), bucket: bucket}
	if b.endpoint == "" {
		return nil, errors.New("TEST_S3_ENDPOINT is not set: run scripts/test-services.sh start and source its env")
	}
	if b.region == "" {
		b.region = "us-east-1"
	}
	b.c = s3.NewFromConfig(aws.Config{Region: b.region, Credentials: credentials.NewStaticCredentialsProvider(b.key, b.secret, "")},
		func(o *s3.Options) { o.BaseEndpoint = aws.String(b.endpoint); o.UsePathStyle = true })
	if _, err := b.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		return nil, fmt.Errorf("s3 create bucket %s: %w", bucket, err)
	}
	return b, nil
}

func (b *s3Backend) name() string { return "s3" }

func (b *s3Backend) hostEnv() map[string]string {
	return map[string]string{"STORAGE_BACKEND": "s3", "S3_ENDPOINT": b.endpoint, "S3_BUCKET": b.bucket,
		"S3_REGION": b.region, "AWS_ACCESS_KEY_ID": b.key, "AWS_SECRET_ACCESS_KEY": b.secret}
}

// deliverAlone stores the object as the s3 plugin does: a multipart upload with the SHA-256
// checksum algorithm, one UploadPart per part, each with its SHA-256 as checksum and as
// SigV4 payload hash (so that the client does not hash the body again), then
// CompleteMultipartUpload, whose time is the floor of a part-wise commit on this server.
func (b *s3Backend) deliverAlone(ctx context.Context, data []byte, size int64, parallel int) (*alone, error) {
	key := "alone.bin"
	mu, err := b.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &key,
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256})
	if err != nil {
		return nil, fmt.Errorf("s3 create multipart upload: %w", err)
	}
	partSize := int64(len(data))
	count := int((size + partSize - 1) / partSize)
	sums := map[int64][32]byte{partSize: sha256.Sum256(data)}
	if last := size - int64(count-1)*partSize; last != partSize {
		sums[last] = sha256.Sum256(data[:last])
	}
	parts := make([]types.CompletedPart, count)
	a, err := timeAlone("AWS SDK: UploadPart per part with its SHA-256 (checksum and payload hash), CompleteMultipartUpload",
		func() error {
			return eachPart(size, partSize, parallel, func(n int, _, length int64) error {
				sum := sums[length]
				b64 := base64.StdEncoding.EncodeToString(sum[:])
				out, err := b.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b.bucket, Key: &key, UploadId: mu.UploadId,
					PartNumber: aws.Int32(int32(n + 1)), Body: bytes.NewReader(data[:length]), ContentLength: aws.Int64(length),
					ChecksumAlgorithm: types.ChecksumAlgorithmSha256, ChecksumSHA256: &b64}, payloadHash(hex.EncodeToString(sum[:])))
				if err != nil {
					return fmt.Errorf("part %d: %w", n+1, err)
				}
				parts[n] = types.CompletedPart{PartNumber: aws.Int32(int32(n + 1)), ETag: out.ETag, ChecksumSHA256: &b64}
				return nil
			})
		},
		func() error {
			_, err := b.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: mu.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			return err
		})
	if err != nil {
		b.c.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: &key, UploadId: mu.UploadId})
		return nil, err
	}
	if _, err := b.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key}); err != nil {
		return nil, err
	}
	a.MBps = float64(size) / 1e6 / a.PartsSeconds
	return a, nil
}

// payloadHash makes an UploadPart sign its body with a known SHA-256 instead of reading
// the body to hash it (as the s3 plugin's PutPart does).
func payloadHash(sum string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("benchdelivery:PayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, sum), in)
				}), middleware.Before)
		})
	}
}

func (b *s3Backend) verify(ctx context.Context, finalPath string, size int64) error {
	prefix := "s3://" + b.bucket + "/"
	if !strings.HasPrefix(finalPath, prefix) {
		return fmt.Errorf("final_path %q is not under %s", finalPath, prefix)
	}
	key := strings.TrimPrefix(finalPath, prefix)
	out, err := b.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: &key})
	if err != nil {
		return fmt.Errorf("s3 head %s: %w", key, err)
	}
	if aws.ToInt64(out.ContentLength) != size {
		return fmt.Errorf("s3 %s holds %d bytes, want %d", key, aws.ToInt64(out.ContentLength), size)
	}
	_, err = b.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	return err
}

// close removes every object and unfinished multipart upload of the bucket, then the bucket.
func (b *s3Backend) close(ctx context.Context) {
	if ups, err := b.c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &b.bucket}); err == nil {
		for _, u := range ups.Uploads {
			b.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: u.Key, UploadId: u.UploadId})
		}
	}
	p := s3.NewListObjectsV2Paginator(b.c, &s3.ListObjectsV2Input{Bucket: &b.bucket})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			break
		}
		for _, o := range out.Contents {
			b.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: o.Key})
		}
	}
	b.c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &b.bucket})
}

// loadAvg is the 1, 5 and 15 minute load averages of the machine (zeros where unknown).
func loadAvg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err == nil {
		fmt.Sscan(string(b), &l[0], &l[1], &l[2])
	}
	return l
}
