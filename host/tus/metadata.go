package tus

import (
	"encoding/base64"
	"strings"

	"github.com/chunked-uploader/chunked-uploader/host"
)

// maxMetadata bounds the Upload-Metadata header (the API's header limit bounds it too).
const maxMetadata = 16 << 10

// parseMetadata decodes Upload-Metadata: comma-separated pairs "key base64(value)", or a
// key alone. Keys must be unique.
func parseMetadata(h string) (map[string]string, error) {
	md := map[string]string{}
	if strings.TrimSpace(h) == "" {
		return md, nil
	}
	if len(h) > maxMetadata {
		return nil, host.Errorf(host.CodeInvalidRequest, "Upload-Metadata is %d bytes, at most %d allowed", len(h), maxMetadata)
	}
	for _, pair := range strings.Split(h, ",") {
		key, val, _ := strings.Cut(strings.TrimSpace(pair), " ")
		if key == "" || strings.ContainsAny(key, " \t") {
			return nil, host.Errorf(host.CodeInvalidRequest, "Upload-Metadata: %q is not a key and a base64 value", pair)
		}
		if _, dup := md[key]; dup {
			return nil, host.Errorf(host.CodeInvalidRequest, "Upload-Metadata: key %q given twice", key)
		}
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val))
		if err != nil {
			return nil, host.Errorf(host.CodeInvalidRequest, "Upload-Metadata: the value of %q is not base64", key)
		}
		md[key] = string(b)
	}
	return md, nil
}

// encodeMetadata is the Upload-Metadata HEAD answers: the filename as it was requested.
func encodeMetadata(u *host.Upload) string {
	name := u.Filename
	if u.Path != "" {
		name = u.Path + "/" + name
	}
	return "filename " + base64.StdEncoding.EncodeToString([]byte(name))
}
