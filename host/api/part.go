package api

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

// handlePart authenticates the part token and checks everything it can before reading a
// single byte of the body; only then does the body stream to disk.
func (s *Server) handlePart(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	done := s.metrics.PartStarted()
	stored, err := s.part(w, r, ps)
	if err == nil {
		done("", stored)
	} else {
		err = s.bodyError(r, err)
		done(string(host.ErrorCode(err)), 0)
		// A refused body is not drained: close the connection rather than read it.
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close")
		}
		s.writeError(w, r, err)
	}
}

// part handles a part upload and returns the bytes stored.
func (s *Server) part(w http.ResponseWriter, r *http.Request, ps httprouter.Params) (int64, error) {
	authz := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return 0, host.Errorf(host.CodeMissingToken, "missing part token: send Authorization: Bearer <token of this part>")
	}
	id := ps.ByName("id")
	claims, err := s.tokens.Verify(strings.TrimSpace(token))
	if err != nil {
		return 0, s.expiredUpload(r.Context(), id, strings.TrimSpace(token), err)
	}
	if claims.UploadID != id {
		return 0, host.Errorf(host.CodeTokenMismatch, "this token is for another upload")
	}
	n, err := strconv.Atoi(ps.ByName("n"))
	if err != nil || n < 0 || ps.ByName("n") != strconv.Itoa(n) {
		return 0, host.Errorf(host.CodeInvalidPartNumber, "part number %q is not a whole number from 0", ps.ByName("n"))
	}
	sum, err := partChecksum(r.Header)
	if err != nil {
		return 0, err
	}
	body := &interruptible{r: r.Body, rc: http.NewResponseController(w)}
	if ib, ok := r.Body.(*idleBody); ok {
		ib.cut = &body.cutFlag
	}
	stored, err := s.svc.PutPart(r.Context(), upload.PartRequest{
		UploadID: id, Part: n, Claims: claims,
		Body: body, ContentLength: r.ContentLength, SHA256: sum, Interrupt: body.interrupt,
	})
	if err != nil {
		return 0, err
	}
	writeJSON(w, http.StatusOK, wire.PartResponse{
		UploadID: id, PartNumber: n, Status: string(host.PartUploaded), ChecksumSHA256: stored.SHA256,
		UploadedParts: stored.UploadedParts, TotalParts: stored.Upload.TotalParts,
	})
	return stored.Upload.PartSize(n), nil
}

// expiredUpload turns the token_expired refusal of the upload's own token into the state of
// the upload: a token expires with its upload, so a part sent after the expiry is told
// 410 upload_expired (or 409 upload_complete, 404 upload_not_found) like every other
// request about the upload, instead of an authentication failure that a client would answer
// with a resume. Only a token this server signed for upload id counts, and only while the
// upload is expired, complete or delivering (a token that expired before its upload, which
// this server never signs, stays token_expired); every other token's err is returned as it
// is. It never lets the part through.
func (s *Server) expiredUpload(ctx context.Context, id, token string, err error) error {
	if host.ErrorCode(err) != host.CodeTokenExpired {
		return err
	}
	claims, ok := s.tokens.ExpiredClaims(token)
	if !ok || claims.UploadID != id {
		return err
	}
	v, serr := s.svc.Status(ctx, id, false)
	if serr != nil {
		return serr // upload_not_found once its record is gone
	}
	switch v.Upload.Status {
	case host.StatusComplete:
		return host.Errorf(host.CodeUploadComplete, "upload %s is already complete", id)
	case host.StatusFinalizing:
		return host.Errorf(host.CodeUploadFinalizing, "upload %s is being delivered and takes no more parts", id)
	}
	if v.Upload.Status != host.StatusExpired && !v.Upload.Expired(time.Now()) {
		return err // the upload lives on: only this token expired
	}
	return host.Errorf(host.CodeUploadExpired, "upload %s expired at %s", id, timestamp(v.Upload.ExpiresAt))
}

// partChecksum reads an optional checksum of the body: Content-Digest (RFC 9530,
// sha-256 only) or X-Checksum-SHA256 (hex). It returns nil when neither is sent.
func partChecksum(h http.Header) ([]byte, error) {
	if v := h.Get("X-Checksum-SHA256"); v != "" {
		b, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(b) != 32 {
			return nil, host.Errorf(host.CodeInvalidChecksum, "X-Checksum-SHA256 must be 64 hex digits")
		}
		return b, nil
	}
	v := h.Get("Content-Digest")
	if v == "" {
		return nil, nil
	}
	for _, item := range strings.Split(v, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || strings.ToLower(strings.TrimSpace(alg)) != "sha-256" {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
			break
		}
		b, err := base64.StdEncoding.DecodeString(val[1 : len(val)-1])
		if err != nil || len(b) != 32 {
			break
		}
		return b, nil
	}
	return nil, host.Errorf(host.CodeInvalidChecksum, "Content-Digest must carry sha-256=:<base64 of 32 bytes>: (RFC 9530)")
}

// interruptible is a request body that a newer write of the same part can cut: a read
// blocked on the network is ended by a read deadline in the past, a later read fails at
// once. A body read to its end is never cut (its part is about to be committed).
type interruptible struct {
	r  io.Reader
	rc *http.ResponseController

	mu      sync.Mutex
	inRead  bool
	ended   bool // io.EOF seen
	cut     bool
	cutFlag atomic.Bool // cut, for the idleBody below, which arms its deadline in each read
}

var errSuperseded = errors.New("a newer write of the part took over")

func (b *interruptible) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.cut {
		b.mu.Unlock()
		return 0, errSuperseded
	}
	b.inRead = true
	b.mu.Unlock()
	n, err := b.r.Read(p)
	b.mu.Lock()
	b.inRead = false
	if errors.Is(err, io.EOF) {
		b.ended = true
	}
	b.mu.Unlock()
	return n, err
}

func (b *interruptible) interrupt() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended || b.cut {
		return
	}
	b.cut = true
	b.cutFlag.Store(true)
	if b.inRead {
		_ = b.rc.SetReadDeadline(time.Now())
	}
}
