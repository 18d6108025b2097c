package s3store

import (
	"errors"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

func TestParseConfig(t *testing.T) {
	tests := map[string]struct {
		in    sdk.Config
		check func(t *testing.T, c Config)
		bad   bool
	}{
		"Defaults": {in: sdk.Config{}, check: func(t *testing.T, c Config) {
			if c.Bucket != "uploads" || c.Region != "us-east-1" || c.ForcePathStyle || c.PartSize != 16<<20 || c.Concurrency != 4 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		"EndpointForcesPathStyle": {in: sdk.Config{"S3_ENDPOINT": "http://127.0.0.1:9000"}, check: func(t *testing.T, c Config) {
			if !c.ForcePathStyle {
				t.Error("path style not forced with an endpoint")
			}
		}},
		"PathStyleOff": {in: sdk.Config{"S3_ENDPOINT": "https://s3.example.com", "S3_FORCE_PATH_STYLE": "false"}, check: func(t *testing.T, c Config) {
			if c.ForcePathStyle {
				t.Error("S3_FORCE_PATH_STYLE=false ignored")
			}
		}},
		"Static": {in: sdk.Config{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "c", "S3_PART_SIZE_MB": "64", "S3_CONCURRENCY": "8"},
			check: func(t *testing.T, c Config) {
				if c.AccessKeyID != "a" || c.SecretAccessKey != "b" || c.SessionToken != "c" || c.PartSize != 64<<20 || c.Concurrency != 8 {
					t.Errorf("parsed %+v", c)
				}
			}},
		"BadEndpoint":       {in: sdk.Config{"S3_ENDPOINT": "127.0.0.1:9000"}, bad: true},
		"BucketWithSlash":   {in: sdk.Config{"S3_BUCKET": "bucket/prefix"}, bad: true},
		"BucketWithSpace":   {in: sdk.Config{"S3_BUCKET": "my bucket"}, bad: true},
		"ShortBucket":       {in: sdk.Config{"S3_BUCKET": "ab"}, bad: true},
		"LegacyBucket":      {in: sdk.Config{"S3_BUCKET": "Legacy_Bucket"}},
		"PartTooSmall":      {in: sdk.Config{"S3_PART_SIZE_MB": "4"}, bad: true},
		"PartTooLarge":      {in: sdk.Config{"S3_PART_SIZE_MB": "5121"}, bad: true},
		"PartNotANumber":    {in: sdk.Config{"S3_PART_SIZE_MB": "16MB"}, bad: true},
		"ZeroConcurrency":   {in: sdk.Config{"S3_CONCURRENCY": "0"}, bad: true},
		"HugeConcurrency":   {in: sdk.Config{"S3_CONCURRENCY": "65"}, bad: true},
		"BadPathStyle":      {in: sdk.Config{"S3_FORCE_PATH_STYLE": "maybe"}, bad: true},
		"KeyWithoutSecret":  {in: sdk.Config{"AWS_ACCESS_KEY_ID": "a"}, bad: true},
		"SecretWithoutKey":  {in: sdk.Config{"AWS_SECRET_ACCESS_KEY": "b"}, bad: true},
		"TokenWithoutKeys":  {in: sdk.Config{"AWS_SESSION_TOKEN": "c"}, bad: true},
		"UnknownS3Setting":  {in: sdk.Config{"S3_BUKET": "x"}, bad: true},
		"OtherNamesIgnored": {in: sdk.Config{"AWS_DEFAULT_REGION": "eu-west-1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := ParseConfig(tc.in)
			if tc.bad {
				if !errors.Is(err, sdk.ErrInvalidConfig) {
					t.Fatalf("got %+v, %v; want an error wrapping ErrInvalidConfig", c, err)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig: %v", err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestPartSize(t *testing.T) {
	const gib = 1 << 30
	tests := map[string]struct {
		size, configured, want int64
	}{
		"Small":      {size: 100 << 20, configured: 16 << 20, want: 16 << 20},
		"AtLimit":    {size: 10000 * 16 << 20, configured: 16 << 20, want: 16 << 20},
		"AboveLimit": {size: 10000*16<<20 + 1, configured: 16 << 20, want: 17 << 20},
		"1TiB":       {size: 1024 * gib, configured: 16 << 20, want: 105 << 20},
		"5TiB":       {size: maxObjectLen, configured: 5 << 20, want: 525 << 20},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := partSize(tc.size, tc.configured)
			if got != tc.want {
				t.Errorf("partSize(%d, %d) = %d, want %d", tc.size, tc.configured, got, tc.want)
			}
			if parts := (tc.size + got - 1) / got; parts > maxParts || got > maxPartSize {
				t.Errorf("%d parts of %d bytes", parts, got)
			}
		})
	}
}
