// Package tus serves the tus 1.0.0 resumable upload protocol (https://tus.io/protocols/resumable-upload)
// at /files/, over the same uploads as the part API: an upload created through tus is an
// upload like any other (filename rules, staging, part-wise delivery, status, cancel,
// expiry, webhooks, metrics).
//
// Extensions: creation, creation-with-upload, termination, expiration, checksum (sha1,
// sha256). Not supported: creation-defer-length and concatenation (refused with 400).
//
// Auth: creating an upload (POST /files/) needs the API key (X-API-Key). The Location it
// answers, /files/<id>.<mac>, is the capability for that upload alone (see locations).
//
// One writer per upload: a PATCH of an upload that has one in flight takes over, as part
// writes do: the older PATCH's body is cut, what it had received is kept, and the newer
// one proceeds once it ended (the offset check then decides). A client that lost its
// connection retries at once, without waiting for the server to notice the dead one.
package tus

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/julienschmidt/httprouter"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/metrics"
	"github.com/chunked-uploader/chunked-uploader/host/upload"
	"github.com/chunked-uploader/chunked-uploader/sdk/wire"
)

// Protocol constants as OPTIONS advertises them.
const (
	Version    = "1.0.0"
	Extensions = "creation,creation-with-upload,termination,expiration,checksum"
	Algorithms = "sha1,sha256"
	// Path is where the endpoint is served.
	Path = "/files/"

	offsetContentType = "application/offset+octet-stream"
)

// Error codes of the protocol's own answers (the others are the API's, see package api).
const (
	CodeUnsupportedVersion host.Code = "tus_version_unsupported" // 412
	CodeOffsetMismatch     host.Code = "offset_mismatch"         // 409
	CodeChecksumMismatch   host.Code = "checksum_mismatch"       // 460
	CodeNotSupported       host.Code = "tus_extension_unsupported"
)

// statusChecksumMismatch is the status the checksum extension gives a body whose checksum
// is not the one of Upload-Checksum.
const statusChecksumMismatch = 460

// Options configure a Handler.
type Options struct {
	Secret  string // JWT_SECRET: the key of upload URLs is derived from it
	MaxSize int64  // MAX_UPLOAD_SIZE, advertised as Tus-Max-Size
	APIKey  *auth.APIKey
	Metrics *metrics.Metrics // optional
	Logger  hclog.Logger
	// IdleTimeout bounds how long a PATCH body may send nothing (default one minute).
	IdleTimeout time.Duration
}

// Hooks are what the API server lends the handler.
type Hooks struct {
	// WriteError answers with err as the API does (its one map of codes to statuses).
	WriteError func(http.ResponseWriter, *http.Request, error)
	// Accepting wraps the creation of uploads (refused while the server drains).
	Accepting func(httprouter.Handle) httprouter.Handle
	// Serves, if set, reports whether this server serves upload id; when it does not, it
	// has answered (a node behind a balancer: 421 wrong_node for another node's upload).
	Serves func(w http.ResponseWriter, r *http.Request, id string) bool
}

// Handler serves the tus endpoint.
type Handler struct {
	svc     *upload.Service
	opt     Options
	loc     locations
	metrics *metrics.Metrics
	log     hclog.Logger
	hooks   Hooks

	mu     sync.Mutex
	states map[string]*state

	finishing sync.Map // upload ids being finished in the background (finishLater)
}

// New returns the tus handler for svc.
func New(svc *upload.Service, opt Options) *Handler {
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = time.Minute
	}
	return &Handler{svc: svc, opt: opt, loc: newLocations(opt.Secret), metrics: opt.Metrics, log: opt.Logger,
		states: map[string]*state{}}
}

// Register adds the endpoint's routes to r.
func (h *Handler) Register(r *httprouter.Router, hooks Hooks) {
	h.hooks = hooks
	accepting := hooks.Accepting
	if accepting == nil {
		accepting = func(x httprouter.Handle) httprouter.Handle { return x }
	}
	r.OPTIONS(Path, h.handleOptions)
	r.OPTIONS(Path+":upload", h.handleOptions)
	r.POST(Path, h.protocol(accepting(h.handleCreate)))
	r.HEAD(Path+":upload", h.protocol(h.withUpload(h.handleHead)))
	r.PATCH(Path+":upload", h.protocol(h.withUpload(h.handlePatch)))
	r.DELETE(Path+":upload", h.protocol(h.withUpload(h.handleDelete)))
	// X-HTTP-Method-Override (tus clients' overridePatchMethod) comes as POST.
	r.POST(Path+":upload", h.protocol(h.handleOverride))
}

func (h *Handler) handleOptions(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	hd := w.Header()
	hd.Set("Tus-Resumable", Version)
	hd.Set("Tus-Version", Version)
	hd.Set("Tus-Extension", Extensions)
	hd.Set("Tus-Max-Size", strconv.FormatInt(h.opt.MaxSize, 10))
	hd.Set("Tus-Checksum-Algorithm", Algorithms)
	w.WriteHeader(http.StatusNoContent)
}

// protocol checks Tus-Resumable and sets it on the answer.
func (h *Handler) protocol(next httprouter.Handle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		w.Header().Set("Tus-Resumable", Version)
		w.Header().Set("Cache-Control", "no-store")
		if v := r.Header.Get("Tus-Resumable"); v != Version {
			w.Header().Set("Tus-Version", Version)
			h.fail(w, r, http.StatusPreconditionFailed, CodeUnsupportedVersion,
				"Tus-Resumable must be "+Version+", got "+strconv.Quote(v))
			return
		}
		next(w, r, ps)
	}
}

type uploadHandle func(http.ResponseWriter, *http.Request, *host.Upload)

// withUpload verifies the upload's URL and loads the upload. A URL that is not one this
// server signed is not found, like an upload that does not exist.
func (h *Handler) withUpload(next uploadHandle) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		id, ok := h.loc.verify(ps.ByName("upload"))
		if !ok {
			h.error(w, r, host.Errorf(host.CodeUploadNotFound, "no such upload: use the Location answered at creation"))
			return
		}
		if h.hooks.Serves != nil && !h.hooks.Serves(w, r, id) {
			return
		}
		v, err := h.svc.Status(r.Context(), id, false)
		if err != nil {
			h.error(w, r, err)
			return
		}
		next(w, r, v.Upload)
	}
}

func (h *Handler) handleOverride(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	switch strings.ToUpper(r.Header.Get("X-HTTP-Method-Override")) {
	case http.MethodPatch:
		h.withUpload(h.handlePatch)(w, r, ps)
	case http.MethodDelete:
		h.withUpload(h.handleDelete)(w, r, ps)
	case http.MethodHead:
		h.withUpload(h.handleHead)(w, r, ps)
	default:
		w.Header().Set("Allow", "HEAD, PATCH, DELETE, OPTIONS")
		h.error(w, r, host.Errorf(host.CodeMethodNotAllowed, "method POST is not allowed on %s (allowed: HEAD, PATCH, DELETE, OPTIONS)", r.URL.Path))
	}
}

// state returns the tus state of upload id.
func (h *Handler) state(id string) *state {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.states[id]
	if st == nil {
		st = &state{}
		h.states[id] = st
	}
	return st
}

// forget drops the state of an upload that takes no more bytes.
func (h *Handler) forget(id string) {
	h.mu.Lock()
	delete(h.states, id)
	h.mu.Unlock()
}

// done reports whether u takes no more bytes (its offset is its length).
func done(u *host.Upload) bool {
	return u.Status == host.StatusComplete || u.Status == host.StatusFinalizing
}

func (h *Handler) setUploadHeaders(w http.ResponseWriter, u *host.Upload) {
	hd := w.Header()
	hd.Set("Upload-Length", strconv.FormatInt(u.TotalSize, 10))
	if !done(u) {
		hd.Set("Upload-Expires", u.ExpiresAt.UTC().Format(http.TimeFormat))
	}
}

// currentOffset is the durable offset of u for HEAD.
func (h *Handler) currentOffset(ctx context.Context, u *host.Upload) (int64, error) {
	if done(u) {
		return u.TotalSize, nil
	}
	st := h.state(u.ID)
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.active {
		if _, err := h.loadLocked(ctx, u, st); err != nil {
			return 0, err
		}
	}
	return offset(u, st.base, st.length), nil
}

func (h *Handler) handleHead(w http.ResponseWriter, r *http.Request, u *host.Upload) {
	if u.Expired(time.Now()) {
		h.forget(u.ID)
		h.error(w, r, host.Errorf(host.CodeUploadExpired, "upload %s expired at %s", u.ID, u.ExpiresAt.UTC().Format(time.RFC3339)))
		return
	}
	off, err := h.currentOffset(r.Context(), u)
	if err != nil {
		h.error(w, r, err)
		return
	}
	if off == u.TotalSize && !done(u) {
		// Every byte is here but the upload was not completed (its client went away after
		// the last byte, or the server stopped then). tus clients that resume take this
		// HEAD as success and send nothing more, so the server completes it itself.
		h.finishLater(u.ID)
	}
	h.setUploadHeaders(w, u)
	w.Header().Set("Upload-Offset", strconv.FormatInt(off, 10))
	w.Header().Set("Upload-Metadata", encodeMetadata(u))
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) handleDelete(w http.ResponseWriter, r *http.Request, u *host.Upload) {
	if err := h.svc.Cancel(r.Context(), u.ID); err != nil {
		h.error(w, r, err)
		return
	}
	h.forget(u.ID)
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) handleCreate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := h.opt.APIKey.Check(r.Header.Get("X-API-Key")); err != nil {
		h.error(w, r, err)
		return
	}
	if r.Header.Get("Upload-Defer-Length") != "" {
		h.fail(w, r, http.StatusBadRequest, CodeNotSupported, "Upload-Defer-Length is not supported: send Upload-Length")
		return
	}
	if r.Header.Get("Upload-Concat") != "" {
		h.fail(w, r, http.StatusBadRequest, CodeNotSupported, "the concatenation extension is not supported")
		return
	}
	size, err := strconv.ParseInt(r.Header.Get("Upload-Length"), 10, 64)
	if err != nil || size < 0 {
		h.error(w, r, host.Errorf(host.CodeInvalidSize, "Upload-Length must be a whole number of bytes, got %q", r.Header.Get("Upload-Length")))
		return
	}
	md, err := parseMetadata(r.Header.Get("Upload-Metadata"))
	if err != nil {
		h.error(w, r, err)
		return
	}
	name := md["filename"]
	if name == "" {
		name = md["name"]
	}
	if name == "" {
		h.error(w, r, host.Errorf(host.CodeInvalidFilename, "Upload-Metadata must carry filename (a name or a relative path such as videos/2024/movie.mp4)"))
		return
	}
	withBody := r.Header.Get("Content-Type") == offsetContentType
	if !withBody && r.ContentLength > 0 {
		h.error(w, r, host.Errorf(host.CodeUnsupportedMedia, "a creation body must have Content-Type %s", offsetContentType))
		return
	}
	created, err := h.svc.Init(r.Context(), upload.InitRequest{
		Filename: name, TotalSize: size, ChecksumSHA256: md["checksum_sha256"], WebhookURL: md["webhook_url"],
	})
	if err != nil {
		h.error(w, r, err)
		return
	}
	u := created.Upload
	w.Header().Set("Location", Path+h.loc.token(u.ID))
	h.setUploadHeaders(w, u)
	h.log.Debug("tus upload created", "upload_id", u.ID, "size", size)
	if size == 0 {
		if _, err := h.svc.Complete(r.Context(), u.ID); err != nil {
			h.error(w, r, err)
			return
		}
		w.Header().Set("Upload-Offset", "0")
		w.WriteHeader(http.StatusCreated)
		return
	}
	off := int64(0)
	if withBody {
		if off, err = h.write(w, r, u, 0); err != nil {
			h.error(w, r, err)
			return
		}
	}
	w.Header().Set("Upload-Offset", strconv.FormatInt(off, 10))
	w.WriteHeader(http.StatusCreated)
}

func (h *Handler) handlePatch(w http.ResponseWriter, r *http.Request, u *host.Upload) {
	if r.Header.Get("Content-Type") != offsetContentType {
		h.error(w, r, host.Errorf(host.CodeUnsupportedMedia, "a PATCH must have Content-Type %s", offsetContentType))
		return
	}
	off, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || off < 0 {
		h.error(w, r, host.Errorf(host.CodeInvalidRequest, "Upload-Offset must be a whole number of bytes, got %q", r.Header.Get("Upload-Offset")))
		return
	}
	newOff, err := h.write(w, r, u, off)
	if err != nil {
		h.error(w, r, err)
		return
	}
	h.setUploadHeaders(w, u)
	w.Header().Set("Upload-Offset", strconv.FormatInt(newOff, 10))
	w.WriteHeader(http.StatusNoContent)
}

// protoError is an answer of the protocol's own (not in the API's map).
type protoError struct {
	status int
	code   host.Code
	msg    string
}

func (e *protoError) Error() string { return e.msg }

// checksum reads Upload-Checksum: "<algorithm> <base64 digest>"; nil when absent.
func checksum(hd http.Header) (hash.Hash, []byte, error) {
	v := hd.Get("Upload-Checksum")
	if v == "" {
		return nil, nil, nil
	}
	alg, val, _ := strings.Cut(strings.TrimSpace(v), " ")
	want, err := base64.StdEncoding.DecodeString(strings.TrimSpace(val))
	var hs hash.Hash
	switch strings.ToLower(alg) {
	case "sha1":
		hs = sha1.New()
	case "sha256":
		hs = sha256.New()
	default:
		return nil, nil, &protoError{http.StatusBadRequest, host.CodeInvalidChecksum,
			"Upload-Checksum algorithm " + strconv.Quote(alg) + " is not supported (supported: " + Algorithms + ")"}
	}
	if err != nil || len(want) != hs.Size() {
		return nil, nil, host.Errorf(host.CodeInvalidChecksum, "Upload-Checksum must be %q and the base64 of its %d-byte digest", alg, hs.Size())
	}
	return hs, want, nil
}

// write receives the body of r at offset off of u (a PATCH, or a creation with upload)
// and returns the offset after it. When the last byte arrived it completes the upload and
// returns once it was delivered (or COMPLETE_WAIT_SECONDS passed).
func (h *Handler) write(w http.ResponseWriter, r *http.Request, u *host.Upload, off int64) (int64, error) {
	ctx := r.Context()
	hs, want, err := checksum(r.Header)
	if err != nil {
		return 0, err
	}
	if u.Status == host.StatusExpired || u.Expired(time.Now()) {
		h.forget(u.ID)
		return 0, host.Errorf(host.CodeUploadExpired, "upload %s expired at %s", u.ID, u.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if done(u) {
		if off != u.TotalSize {
			return 0, h.mismatch(w, off, u.TotalSize)
		}
		if r.ContentLength > 0 {
			return 0, host.Errorf(host.CodeUploadComplete, "upload %s has all its bytes already", u.ID)
		}
		return h.complete(ctx, u)
	}
	b := newBody(w, r, h.opt.IdleTimeout)
	defer b.end()
	stream, err := h.svc.AdmitStream(ctx, u.ID, b.interrupt)
	if err != nil {
		return 0, err
	}
	defer stream.Release()
	if v, err := h.svc.Status(ctx, u.ID, false); err != nil { // as it is now the upload is ours
		return 0, err
	} else {
		u = v.Upload
	}
	if done(u) {
		if off != u.TotalSize {
			return 0, h.mismatch(w, off, u.TotalSize)
		}
		return h.complete(ctx, u)
	}
	st, recorded, inactive, err := h.activate(ctx, u)
	if err != nil {
		return 0, err
	}
	defer inactive()
	// Whole parts a previous PATCH left in the file (the service was busy, or a crash).
	if err := h.carve(ctx, u, st, recorded); err != nil {
		return 0, err
	}
	cur := offset(u, st.base, st.length)
	if off != cur {
		return 0, h.mismatch(w, off, cur)
	}
	remaining := u.TotalSize - cur
	if r.ContentLength > remaining {
		return 0, host.Errorf(host.CodeRequestTooLarge, "the body is %d bytes, the upload has %d left to receive", r.ContentLength, remaining)
	}
	if hs != nil {
		err = h.receiveChecked(ctx, u, st, b, hs, want, remaining)
	} else {
		err = h.receive(ctx, u, st, b, remaining)
	}
	stream.DoneReading()
	cur = offset(u, st.base, st.length)
	if err != nil && cur == u.TotalSize {
		// Every byte arrived, then the request failed (a body past Upload-Length, a client
		// gone after its last byte): the upload is completed all the same.
		defer h.finishLater(u.ID)
	}
	if err != nil {
		if !errors.Is(err, errTakenOver) && !errors.As(err, new(*host.Error)) && !errors.As(err, new(*protoError)) {
			h.log.Debug("PATCH body broke off; the bytes received are kept", "upload_id", u.ID, "offset", cur, "error", err)
			w.Header().Set("Connection", "close")
			return 0, host.Wrap(err, host.CodePartSizeMismatch, "the request body broke off at offset "+strconv.FormatInt(cur, 10)+"; the bytes received are kept: HEAD for the offset, then resume")
		}
		if errors.Is(err, errTakenOver) {
			return 0, host.Errorf(host.CodePartSuperseded, "a newer PATCH of this upload took over at offset %d", cur)
		}
		return 0, err
	}
	// The body is all here: what is left does not depend on the client staying.
	ctx = context.WithoutCancel(ctx)
	if err := h.carve(ctx, u, st, recorded); err != nil {
		return 0, err
	}
	if cur < u.TotalSize {
		return cur, nil
	}
	return h.complete(ctx, u)
}

// activate loads u's tus state from disk (see loadLocked) for the writer that holds u's
// stream and marks it active, so that HEAD answers from it; it returns the state, the
// first part not recorded, and the func that ends the activation.
func (h *Handler) activate(ctx context.Context, u *host.Upload) (*state, int, func(), error) {
	st := h.state(u.ID)
	st.mu.Lock()
	defer st.mu.Unlock()
	recorded, err := h.loadLocked(ctx, u, st)
	if err != nil {
		return nil, 0, nil, err
	}
	st.active = true
	return st, recorded, func() {
		st.mu.Lock()
		st.active = false
		st.mu.Unlock()
	}, nil
}

// finishLater finishes upload id in the background (see finish), once at a time per upload.
func (h *Handler) finishLater(id string) {
	if _, busy := h.finishing.LoadOrStore(id, true); busy {
		return
	}
	go func() {
		defer h.finishing.Delete(id)
		ctx, cancel := context.WithTimeout(context.Background(), finishTimeout)
		defer cancel()
		if err := h.finish(ctx, id); err != nil {
			h.log.Warn("completing a tus upload that has all its bytes failed; an empty PATCH at its end, or the next HEAD, tries again",
				"upload_id", id, "error", err)
		}
	}()
}

// finishTimeout bounds a background finish.
const finishTimeout = 10 * time.Minute

// finish completes upload id if it has all its bytes and is not completed yet, as an empty
// PATCH at its end would: it hands the parts the partial file still holds to the upload
// service, then completes the upload. It needs no client.
func (h *Handler) finish(ctx context.Context, id string) error {
	stream, err := h.svc.AdmitStream(ctx, id, func() {})
	if err != nil {
		return err
	}
	defer stream.Release()
	v, err := h.svc.Status(ctx, id, false)
	if err != nil {
		return err
	}
	u := v.Upload
	if done(u) {
		return nil
	}
	st, recorded, inactive, err := h.activate(ctx, u)
	if err != nil {
		return err
	}
	defer inactive()
	if err := h.carve(ctx, u, st, recorded); err != nil {
		return err
	}
	if base, length := st.get(); offset(u, base, length) < u.TotalSize {
		return nil
	}
	_, err = h.complete(ctx, u)
	return err
}

// complete completes u, which has all its bytes.
func (h *Handler) complete(ctx context.Context, u *host.Upload) (int64, error) {
	if _, err := h.svc.Complete(ctx, u.ID); err != nil {
		return 0, err
	}
	h.forget(u.ID)
	return u.TotalSize, nil
}

func (h *Handler) mismatch(w http.ResponseWriter, got, want int64) error {
	w.Header().Set("Upload-Offset", strconv.FormatInt(want, 10))
	return &protoError{http.StatusConflict, CodeOffsetMismatch,
		"Upload-Offset is " + strconv.FormatInt(got, 10) + ", the upload's offset is " + strconv.FormatInt(want, 10) + ": HEAD for the offset, then resume"}
}

// copyBuf is the size of the buffer a PATCH streams through (the only memory it holds).
const copyBuf = 256 << 10

// receive streams body into the partial file, making it durable every syncEvery bytes and
// at the end, and hands each whole part to the upload service as soon as it is there.
func (h *Handler) receive(ctx context.Context, u *host.Upload, st *state, b *body, remaining int64) error {
	dir := h.svc.StagingDir(u.ID)
	buf := make([]byte, copyBuf)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	base, length := st.get()
	var unsynced int64
	sync := func() error {
		if unsynced == 0 {
			return nil
		}
		if err := f.Sync(); err != nil {
			return err
		}
		unsynced = 0
		st.set(base, length)
		return nil
	}
	for remaining > 0 {
		size := u.PartSize(base)
		if length == size {
			if err := sync(); err != nil {
				return err
			}
			f.Close()
			f = nil
			// The part is on disk: handing it on does not depend on the client staying.
			if err := h.carve(context.WithoutCancel(ctx), u, st, base); err != nil {
				return err
			}
			base, length = st.get()
			continue
		}
		if f == nil {
			var err error
			if f, err = openPartial(dir, base); err != nil {
				return err
			}
		}
		n, rerr := b.Read(buf[:min(int64(len(buf)), size-length, remaining)])
		if n > 0 {
			if _, err := f.Write(buf[:n]); err != nil {
				serr := sync() // what was written before counts
				return errors.Join(host.Wrap(err, host.CodeInsufficientStorage, "writing the body to staging failed; try later"), serr)
			}
			length += int64(n)
			remaining -= int64(n)
			unsynced += int64(n)
			if unsynced >= syncEvery {
				if err := sync(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if err := sync(); err != nil {
				return err
			}
			return rerr
		}
	}
	if err := sync(); err != nil {
		return err
	}
	if remaining == 0 {
		// Nothing may come after the upload's last byte.
		if n, _ := b.Read(buf[:1]); n > 0 {
			return host.Errorf(host.CodeRequestTooLarge, "the body goes past Upload-Length %d", u.TotalSize)
		}
	}
	return nil
}

// receiveChecked receives a body with Upload-Checksum: it goes to a temporary file first
// and into the partial file only once its digest matched, so that no byte of a body that
// failed its checksum counts. Such a body may be at most one chunk (CHUNK_SIZE_MB) long.
func (h *Handler) receiveChecked(ctx context.Context, u *host.Upload, st *state, b *body, hs hash.Hash, want []byte, remaining int64) error {
	limit := min(remaining, u.ChunkSize)
	dir := h.svc.StagingDir(u.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tus-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	n, err := io.CopyBuffer(io.MultiWriter(tmp, hs), io.LimitReader(b, limit+1), make([]byte, copyBuf))
	if err != nil {
		return err
	}
	if n > limit {
		return host.Errorf(host.CodeRequestTooLarge, "a PATCH with Upload-Checksum may carry at most %d bytes (one chunk, and no more than the upload has left)", limit)
	}
	if got := hs.Sum(nil); string(got) != string(want) {
		return &protoError{statusChecksumMismatch, CodeChecksumMismatch,
			"the body's checksum is " + base64.StdEncoding.EncodeToString(got) + ", Upload-Checksum says " + base64.StdEncoding.EncodeToString(want) + "; nothing was kept"}
	}
	base, length := st.get()
	f, err := openPartial(dir, base)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(f, io.NewSectionReader(tmp, 0, n), make([]byte, copyBuf)); err != nil {
		_ = f.Truncate(length)
		return host.Wrap(err, host.CodeInsufficientStorage, "writing the body to staging failed; try later")
	}
	if err := f.Sync(); err != nil {
		return err
	}
	st.set(base, length+n)
	return nil
}

// error answers with err: the protocol's own answers here, the others as the API does.
func (h *Handler) error(w http.ResponseWriter, r *http.Request, err error) {
	var pe *protoError
	if errors.As(err, &pe) {
		h.fail(w, r, pe.status, pe.code, pe.msg)
		return
	}
	if r.ContentLength != 0 && (r.Method == http.MethodPatch || r.Method == http.MethodPost) {
		w.Header().Set("Connection", "close") // a refused body is not drained
	}
	h.hooks.WriteError(w, r, err)
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, code host.Code, msg string) {
	if r.ContentLength != 0 && (r.Method == http.MethodPatch || r.Method == http.MethodPost) {
		w.Header().Set("Connection", "close")
	}
	h.log.Debug("tus request refused", "method", r.Method, "path", r.URL.Path, "code", code, "error", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(wire.ErrorBody{Error: msg, Code: string(code), Status: status})
}
