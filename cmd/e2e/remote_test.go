package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/services"
	"github.com/hirochachacha/go-smb2"
)

// The s3 and smb backends deliver to real servers: the Samba and S3 servers of
// scripts/test-services.sh, named by the TEST_S3_* and TEST_SMB_* variables
// (`eval "$(bash scripts/test-services.sh env)"`). Without them these tests
// fail; only under -short do they skip. Delivered objects are read back from
// the server with a client of the test's own (aws-sdk-go-v2, go-smb2), by the
// final_path the host reported.

// s3PartSizeMB is the S3 plugin's multipart part size in the tests: the
// smallest S3 allows, so that files over 5 MiB go up in several parts.
const s3PartSizeMB = 5

// s3Client is a client of the test's own for the S3 server host s delivers to.
func s3Client(s *server) *s3.Client {
	return services.NewS3Client(s.Env["S3_ENDPOINT"], s.Env["S3_REGION"], s.Env["AWS_ACCESS_KEY_ID"], s.Env["AWS_SECRET_ACCESS_KEY"])
}

// s3MultipartSuffix is what the test lists for a multipart upload in progress.
const s3MultipartSuffix = " (multipart upload in progress)"

// s3Backend is the s3 backend against the server svc returns. Every host gets
// a bucket of its own.
func s3Backend(svc func(tb testing.TB) services.S3) backend {
	return backend{
		name: "s3",
		env: func(tb testing.TB, dir string) map[string]string {
			srv := svc(tb)
			return map[string]string{
				"STORAGE_BACKEND":       "s3",
				"S3_ENDPOINT":           srv.Endpoint,
				"S3_BUCKET":             srv.NewBucket(tb, "e2e-"),
				"S3_REGION":             srv.Region,
				"S3_FORCE_PATH_STYLE":   "true",
				"S3_PART_SIZE_MB":       fmt.Sprint(s3PartSizeMB),
				"AWS_ACCESS_KEY_ID":     srv.AccessKey,
				"AWS_SECRET_ACCESS_KEY": srv.SecretKey,
			}
		},
		open: func(tb testing.TB, s *server, finalPath string) (io.ReadCloser, error) {
			bucket, key, err := services.ParseS3URL(finalPath)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), services.Timeout)
			out, err := s3Client(s).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				cancel()
				return nil, fmt.Errorf("GetObject s3://%s/%s: %w", bucket, key, err)
			}
			return readCloser{out.Body, func() error { err := out.Body.Close(); cancel(); return err }}, nil
		},
		checkFinalPath: func(tb testing.TB, s *server, finalPath, key string) {
			tb.Helper()
			if want := "s3://" + s.Env["S3_BUCKET"] + "/" + key; finalPath != want {
				tb.Errorf("final_path = %q, want %q", finalPath, want)
			}
		},
		objects: func(tb testing.TB, s *server) map[string]int64 {
			tb.Helper()
			objs, err := s3Objects(s3Client(s), s.Env["S3_BUCKET"])
			if err != nil {
				tb.Fatalf("listing bucket %s: %v", s.Env["S3_BUCKET"], err)
			}
			return objs
		},
	}
}

// s3Objects lists the objects of bucket (key → size) and its multipart
// uploads in progress (key + s3MultipartSuffix → size of the parts so far).
func s3Objects(c *s3.Client, bucket string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), services.Timeout)
	defer cancel()
	objs := map[string]int64{}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			objs[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
		}
	}
	uploads, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		return nil, fmt.Errorf("ListMultipartUploads: %w", err)
	}
	for _, u := range uploads.Uploads {
		var size int64
		parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId})
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload" {
			continue // aborted or completed since it was listed: not held any more
		}
		if err != nil {
			return nil, fmt.Errorf("ListParts %s: %w", aws.ToString(u.Key), err)
		}
		for _, pt := range parts.Parts {
			size += aws.ToInt64(pt.Size)
		}
		objs[aws.ToString(u.Key)+s3MultipartSuffix] += size
	}
	return objs, nil
}

// s3ETag returns the ETag of the object at final_path, without its quotes.
func s3ETag(tb testing.TB, s *server, finalPath string) string {
	tb.Helper()
	bucket, key, err := services.ParseS3URL(finalPath)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), services.Timeout)
	defer cancel()
	out, err := s3Client(s).HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		tb.Fatalf("HeadObject %s: %v", finalPath, err)
	}
	return strings.Trim(aws.ToString(out.ETag), `"`)
}

// readCloser closes with a function of its own.
type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// ---- SMB ----

// smbService is an SMB server, a share on it and the credentials.
type smbService struct {
	host, port, user, pass, share string
}

func (svc smbService) addr() string { return net.JoinHostPort(svc.host, svc.port) }

// sharedSMB is the SMB server of the TEST_SMB_* variables.
func sharedSMB(tb testing.TB) smbService {
	tb.Helper()
	addr := os.Getenv("TEST_SMB_ADDR")
	svc := smbService{user: os.Getenv("TEST_SMB_USER"), pass: os.Getenv("TEST_SMB_PASS"), share: os.Getenv("TEST_SMB_SHARE")}
	if addr == "" || svc.user == "" || svc.share == "" {
		services.SkipOrFail(tb, "TEST_SMB_ADDR, TEST_SMB_USER, TEST_SMB_PASS and TEST_SMB_SHARE are")
	}
	var err error
	if svc.host, svc.port, err = net.SplitHostPort(addr); err != nil {
		tb.Fatalf("TEST_SMB_ADDR=%q: %v", addr, err)
	}
	return svc
}

// smbMount is a session of the test's own with a mounted share.
type smbMount struct {
	*smb2.Share
	sess *smb2.Session
	conn net.Conn
}

func (m *smbMount) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.WithContext(ctx).Umount()
	_ = m.sess.WithContext(ctx).Logoff()
	_ = m.conn.Close()
}

// mountSMB logs in to addr and mounts share.
func mountSMB(addr, user, pass, share string) (*smbMount, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d := &smb2.Dialer{Initiator: &smb2.NTLMInitiator{User: user, Password: pass}}
	sess, err := d.DialContext(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("SMB login to %s: %w", addr, err)
	}
	fs, err := sess.WithContext(ctx).Mount(share)
	if err != nil {
		_ = sess.Logoff()
		conn.Close()
		return nil, fmt.Errorf("mounting %s on %s: %w", share, addr, err)
	}
	return &smbMount{Share: fs.WithContext(context.Background()), sess: sess, conn: conn}, nil
}

// smbServerMount mounts the share host s delivers to.
func smbServerMount(s *server) (*smbMount, error) {
	return mountSMB(net.JoinHostPort(s.Env["SMB_HOST"], s.Env["SMB_PORT"]), s.Env["SMB_USER"], s.Env["SMB_PASS"], s.Env["SMB_SHARE"])
}

// parseSMBURL splits smb://host[:port]/share/path into the server address
// (port 445 when none), the share and the share-relative path.
func parseSMBURL(loc string) (addr, share, name string, err error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", "", "", err
	}
	if u.Scheme != "smb" || u.Host == "" {
		return "", "", "", fmt.Errorf("%q is not an smb://host/share/path URL", loc)
	}
	share, name, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || share == "" || name == "" {
		return "", "", "", fmt.Errorf("%q is not smb://host/share/path", loc)
	}
	port := u.Port()
	if port == "" {
		port = "445"
	}
	return net.JoinHostPort(u.Hostname(), port), share, name, nil
}

// smbBackend is the smb backend against the server svc returns. Every host
// gets a directory of its own (SMB_PATH) in the share.
func smbBackend(svc func(tb testing.TB) smbService) backend {
	return backend{
		name: "smb",
		env: func(tb testing.TB, dir string) map[string]string {
			srv := svc(tb)
			root := services.RandomName("e2e-")
			tb.Cleanup(func() {
				report := services.CleanupReporter(tb)
				m, err := mountSMB(srv.addr(), srv.user, srv.pass, srv.share)
				if err != nil {
					report("removing %s from the share: %v", root, err)
					return
				}
				defer m.close()
				if err := m.RemoveAll(root); err != nil {
					report("removing %s from the share: %v", root, err)
				}
			})
			return map[string]string{
				"STORAGE_BACKEND": "smb",
				"SMB_HOST":        srv.host,
				"SMB_PORT":        srv.port,
				"SMB_USER":        srv.user,
				"SMB_PASS":        srv.pass,
				"SMB_SHARE":       srv.share,
				"SMB_PATH":        root,
			}
		},
		open: func(tb testing.TB, s *server, finalPath string) (io.ReadCloser, error) {
			addr, share, name, err := parseSMBURL(finalPath)
			if err != nil {
				return nil, err
			}
			m, err := mountSMB(addr, s.Env["SMB_USER"], s.Env["SMB_PASS"], share)
			if err != nil {
				return nil, err
			}
			f, err := m.Open(name)
			if err != nil {
				m.close()
				return nil, err
			}
			// Reads of 1 MiB: go-smb2 sends one request per Read, and
			// io.Copy's 32 KiB reads make reading large files very slow.
			return readCloser{bufio.NewReaderSize(f, mib), func() error { err := f.Close(); m.close(); return err }}, nil
		},
		checkFinalPath: func(tb testing.TB, s *server, finalPath, key string) {
			tb.Helper()
			host := s.Env["SMB_HOST"]
			if s.Env["SMB_PORT"] != "445" {
				host += ":" + s.Env["SMB_PORT"]
			}
			if want := "smb://" + host + "/" + s.Env["SMB_SHARE"] + "/" + s.Env["SMB_PATH"] + "/" + key; finalPath != want {
				tb.Errorf("final_path = %q, want %q", finalPath, want)
			}
		},
		objects: func(tb testing.TB, s *server) map[string]int64 {
			tb.Helper()
			m, err := smbServerMount(s)
			if err != nil {
				tb.Fatal(err)
			}
			defer m.close()
			files, err := smbFiles(m.Share, s.Env["SMB_PATH"])
			if err != nil {
				tb.Fatal(err)
			}
			return files
		},
	}
}

// smbFiles lists the files under dir (slash-separated path relative to dir →
// size), hidden temporaries included. A missing dir holds nothing.
func smbFiles(fs *smb2.Share, dir string) (map[string]int64, error) {
	files := map[string]int64{}
	var visit func(rel string) error
	visit = func(rel string) error {
		infos, err := fs.ReadDir(path.Join(dir, rel))
		if rel == "" && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("ReadDir %s: %w", path.Join(dir, rel), err)
		}
		for _, fi := range infos {
			name := path.Join(rel, fi.Name())
			if fi.IsDir() {
				if err := visit(name); err != nil {
					return err
				}
				continue
			}
			files[name] = fi.Size()
		}
		return nil
	}
	return files, visit("")
}

// The backends of the shared test services.
var (
	s3SharedBackend  = s3Backend(services.SharedS3)
	smbSharedBackend = smbBackend(sharedSMB)
)
