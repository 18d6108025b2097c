package s3store

import (
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

func TestParseConfig(t *testing.T) {
	tests := map[string]plugintest.ConfigCase[Config]{
		"Defaults": {In: sdk.Config{}, Check: func(t *testing.T, c Config) {
			if c.Bucket != "uploads" || c.Region != "us-east-1" || c.ForcePathStyle || c.PartSize != 16<<20 || c.Concurrency != 4 {
				t.Errorf("defaults: %+v", c)
			}
		}},
		"EndpointForcesPathStyle": {In: sdk.Config{"S3_ENDPOINT": "http://127.0.0.1:9000"}, Check: func(t *testing.T, c Config) {
			if !c.ForcePathStyle {
				t.Error("path style not forced with an endpoint")
			}
		}},
		"PathStyleOff": {In: sdk.Config{"S3_ENDPOINT": "https://s3.example.com", "S3_FORCE_PATH_STYLE": "false"}, Check: func(t *testing.T, c Config) {
			if c.ForcePathStyle {
				t.Error("S3_FORCE_PATH_STYLE=false ignored")
			}
		}},
		"Static": {In: sdk.Config{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_SESSION_TOKEN": "c", "S3_PART_SIZE_MB": "64", "S3_CONCURRENCY": "8"},
			Check: func(t *testing.T, c Config) {
				if c.AccessKeyID != "a" || c.SecretAccessKey != "b" || c.SessionToken != "c" || c.PartSize != 64<<20 || c.Concurrency != 8 {
					t.Errorf("parsed %+v", c)
				}
			}},
		"BadEndpoint":       {In: sdk.Config{"S3_ENDPOINT": "127.0.0.1:9000"}, Bad: true},
		"BucketWithSlash":   {In: sdk.Config{"S3_BUCKET": "bucket/prefix"}, Bad: true},
		"BucketWithSpace":   {In: sdk.Config{"S3_BUCKET": "my bucket"}, Bad: true},
		"ShortBucket":       {In: sdk.Config{"S3_BUCKET": "ab"}, Bad: true},
		"LegacyBucket":      {In: sdk.Config{"S3_BUCKET": "Legacy_Bucket"}},
		"PartTooSmall":      {In: sdk.Config{"S3_PART_SIZE_MB": "4"}, Bad: true},
		"PartTooLarge":      {In: sdk.Config{"S3_PART_SIZE_MB": "5121"}, Bad: true},
		"PartNotANumber":    {In: sdk.Config{"S3_PART_SIZE_MB": "16MB"}, Bad: true},
		"ZeroConcurrency":   {In: sdk.Config{"S3_CONCURRENCY": "0"}, Bad: true},
		"HugeConcurrency":   {In: sdk.Config{"S3_CONCURRENCY": "65"}, Bad: true},
		"BadPathStyle":      {In: sdk.Config{"S3_FORCE_PATH_STYLE": "maybe"}, Bad: true},
		"KeyWithoutSecret":  {In: sdk.Config{"AWS_ACCESS_KEY_ID": "a"}, Bad: true},
		"SecretWithoutKey":  {In: sdk.Config{"AWS_SECRET_ACCESS_KEY": "b"}, Bad: true},
		"TokenWithoutKeys":  {In: sdk.Config{"AWS_SESSION_TOKEN": "c"}, Bad: true},
		"UnknownS3Setting":  {In: sdk.Config{"S3_BUKET": "x"}, Bad: true},
		"OtherNamesIgnored": {In: sdk.Config{"AWS_DEFAULT_REGION": "eu-west-1"}},
	}
	plugintest.RunConfigCases(t, ParseConfig, tests)
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
