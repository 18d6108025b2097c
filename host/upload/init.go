package upload

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// InitRequest is a request for a new upload.
type InitRequest struct {
	Filename       string
	TotalSize      int64
	ChecksumSHA256 string // optional, hex
	WebhookURL     string // optional
}

// Created is a new upload and the token of each part, in part order.
type Created struct {
	Upload *host.Upload
	Tokens []string
}

// MaxFilenameLength bounds the requested filename (path included), in bytes.
const MaxFilenameLength = 1024

// ValidateFilename checks a requested filename ("videos/2024/movie.mp4" or "movie.mp4")
// and splits it into directory and name. Anything that could leave the storage root or
// that a backend cannot hold is refused, never rewritten.
func ValidateFilename(filename string) (path, name string, err error) {
	if filename == "" {
		return "", "", host.Errorf(host.CodeInvalidFilename, "filename is empty")
	}
	if len(filename) > MaxFilenameLength {
		return "", "", host.Errorf(host.CodeInvalidFilename, "filename is %d bytes, at most %d allowed", len(filename), MaxFilenameLength)
	}
	if strings.HasPrefix(filename, "/") {
		return "", "", host.Errorf(host.CodeInvalidFilename, "filename %q is an absolute path: give a relative path such as videos/2024/movie.mp4", filename)
	}
	path, name = host.SplitFilename(filename)
	if name == "" {
		return "", "", host.Errorf(host.CodeInvalidFilename, "filename %q ends with '/': it names a directory, not a file", filename)
	}
	// The delivered name is "<36-char id>_<name>": keep it within a segment's limit.
	if len(name) > sdk.MaxSegmentLength-37 {
		return "", "", host.Errorf(host.CodeInvalidFilename, "file name is %d bytes, at most %d allowed", len(name), sdk.MaxSegmentLength-37)
	}
	if err := sdk.ValidKey(host.ObjectKey(strings.Repeat("0", 36), path, name)); err != nil {
		msg := strings.TrimPrefix(err.Error(), sdk.ErrInvalidKey.Error()+": ")
		return "", "", host.Errorf(host.CodeInvalidFilename, "filename %q is not allowed: %s", filename, msg)
	}
	if err := checkComponents(filename); err != nil {
		return "", "", err
	}
	return path, name, nil
}

func (s *Service) validate(req InitRequest) (path, name string, err error) {
	path, name, err = ValidateFilename(req.Filename)
	if err != nil {
		return "", "", err
	}
	if req.TotalSize < 0 {
		return "", "", host.Errorf(host.CodeInvalidSize, "total_size must not be negative, got %d", req.TotalSize)
	}
	if req.TotalSize > s.opt.MaxUpload {
		return "", "", host.Errorf(host.CodeUploadTooLarge, "total_size %d is over the server's limit of %d bytes", req.TotalSize, s.opt.MaxUpload)
	}
	if parts := host.PartCount(req.TotalSize, s.opt.ChunkSize); parts > s.opt.MaxParts {
		return "", "", host.Errorf(host.CodeTooManyParts, "total_size %d needs %d parts of %d bytes, at most %d allowed",
			req.TotalSize, parts, s.opt.ChunkSize, s.opt.MaxParts)
	}
	if req.ChecksumSHA256 != "" {
		if b, err := hex.DecodeString(req.ChecksumSHA256); err != nil || len(b) != 32 {
			return "", "", host.Errorf(host.CodeInvalidChecksum, "checksum_sha256 must be 64 hex digits")
		}
	}
	if req.WebhookURL != "" {
		u, err := url.Parse(req.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(req.WebhookURL) > 2048 {
			return "", "", host.Errorf(host.CodeInvalidWebhookURL, "webhook_url must be an absolute http or https URL")
		}
	}
	return path, name, nil
}

// Init creates an upload and issues one token per part.
func (s *Service) Init(ctx context.Context, req InitRequest) (*Created, error) {
	path, name, err := s.validate(req)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(1e9)
	u := &host.Upload{
		ID: s.newID(), Filename: name, Path: path,
		TotalSize: req.TotalSize, ChunkSize: s.opt.ChunkSize,
		TotalParts:     int(host.PartCount(req.TotalSize, s.opt.ChunkSize)),
		Status:         host.StatusPending,
		StorageBackend: s.backend.Name(),
		ChecksumSHA256: strings.ToLower(req.ChecksumSHA256),
		WebhookURL:     req.WebhookURL,
		CreatedAt:      now, UpdatedAt: now,
		ExpiresAt: now.Add(s.opt.TTL),
	}
	u.DeliveryMode = s.deliveryMode(u)
	if err := s.reserve(u); err != nil {
		return nil, err
	}
	tokens := make([]string, u.TotalParts)
	for n := range tokens {
		if tokens[n], err = s.tokens.Issue(u.ID, n, u.PartSize(n), u.ExpiresAt); err != nil {
			s.release(u.ID)
			return nil, err
		}
	}
	if err := s.db.CreateUpload(ctx, u); err != nil {
		s.release(u.ID)
		return nil, fmt.Errorf("init: %w", err)
	}
	if u.DeliveryMode == host.DeliverParts && s.partFiler() != nil {
		// Begin the backend's object now, in the background, as a tus creation or S3's
		// CreateMultipartUpload does: the first part written into its part file then finds
		// it begun instead of waiting for it (the plugin's BeginObject and the database's
		// record of the handle: 3 to 20 ms measured). A backend without part files begins
		// its object when it has the first part to deliver, as before. One try: see
		// beginAtInit.
		s.pumpFor(u.ID, u.Key()).beginAtInit()
	}
	s.log.Info("upload created", "upload_id", u.ID, "total_size", u.TotalSize, "parts", u.TotalParts,
		"delivery", map[bool]string{true: "part-wise", false: "whole"}[u.DeliveryMode == host.DeliverParts])
	return &Created{Upload: u, Tokens: tokens}, nil
}

// deliveryMode decides how u reaches the backend: part by part when the backend can take
// it so (an empty file goes whole: it has no part).
func (s *Service) deliveryMode(u *host.Upload) host.DeliveryMode {
	limits := s.backend.Parts()
	if limits == nil || u.TotalParts == 0 {
		return host.DeliverWhole
	}
	if !limits.Allows(sdk.ObjectSpec{Size: u.TotalSize, PartSize: u.ChunkSize, PartCount: u.TotalParts}) {
		return host.DeliverWhole
	}
	return host.DeliverParts
}

// checkSpace refuses with insufficient_storage unless the staging disk has need bytes free.
func (s *Service) checkSpace(need int64) error {
	free, err := s.free()
	if err != nil {
		return err
	}
	if free < need {
		return host.Errorf(host.CodeInsufficientStorage, "the server has %d MiB free for staging, this needs %d MiB; try later or a smaller file",
			free>>20, (need+(1<<20)-1)>>20)
	}
	return nil
}
