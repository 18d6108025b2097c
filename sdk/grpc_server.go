package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/hashicorp/go-hclog"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"
)

// grpcServer serves a Storage built by a Factory over StorageService.
type grpcServer struct {
	storagev1.UnimplementedStorageServiceServer

	name     string
	factory  Factory
	validate func(Config) error // nil: validate_only checks nothing
	log      hclog.Logger
	// stagedReads: the plugin may read staged parts itself (WithStagedReads).
	stagedReads bool

	mu         sync.RWMutex
	storage    Storage // nil until Configure succeeded
	stagingDir string  // the host's staging directory, once its probe was read; "" if none
}

func (s *grpcServer) current() (Storage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.storage == nil {
		return nil, ToStatus(fmt.Errorf("%w: Configure was not called", ErrNotConfigured))
	}
	return s.storage, nil
}

func (s *grpcServer) Configure(ctx context.Context, req *storagev1.ConfigureRequest) (*storagev1.ConfigureResponse, error) {
	cfg := Config(req.GetSettings())
	if cfg == nil {
		cfg = Config{}
	}
	if req.GetValidateOnly() {
		if s.validate == nil {
			return &storagev1.ConfigureResponse{Name: s.name}, nil
		}
		if err := s.validate(cfg); err != nil {
			return nil, ToStatus(err)
		}
		return &storagev1.ConfigureResponse{Name: s.name}, nil
	}
	st, err := s.factory(ctx, cfg, s.log)
	if err != nil {
		s.log.Error("configure failed", "error", err)
		return nil, ToStatus(err)
	}
	probe, dir := s.readProbe(req.GetStagingProbe())
	s.mu.Lock()
	old := s.storage
	s.storage = st
	s.stagingDir = dir
	s.mu.Unlock()
	if c, ok := old.(Closer); ok && old != nil {
		if err := c.Close(); err != nil {
			s.log.Warn("closing previous backend", "error", err)
		}
	}
	s.log.Info("configured", "settings", cfg.Keys())
	resp := &storagev1.ConfigureResponse{Name: s.name, StagingProbe: probe}
	if ps, ok := st.(PartStorage); ok {
		l := ps.PartLimits()
		_, files := st.(PartFiles)
		resp.Parts = &storagev1.PartsSupport{MinPartSize: l.MinPartSize, MaxParts: l.MaxParts, PartFiles: files}
	}
	return resp, nil
}

func (s *grpcServer) Put(stream storagev1.StorageService_PutServer) error {
	st, err := s.current()
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hdr := first.GetHeader()
	if hdr == nil {
		return ToStatus(fmt.Errorf("%w: the first Put message must be a header", ErrInvalidKey))
	}
	if err := ValidKey(hdr.GetKey()); err != nil {
		return ToStatus(err)
	}
	if hdr.GetSize() < 0 {
		return ToStatus(fmt.Errorf("%w: negative size %d", ErrSizeMismatch, hdr.GetSize()))
	}
	r := &streamReader{recv: putStream(stream), size: hdr.GetSize(), hash: sha256.New()}
	obj, err := st.Put(stream.Context(), hdr.GetKey(), r, hdr.GetSize())
	if err == nil && !r.finished {
		// The implementation returned without reading to EOF: it cannot have verified the
		// transfer. Refuse rather than report success for unverified data.
		_ = st.Delete(stream.Context(), hdr.GetKey())
		err = fmt.Errorf("%w: backend returned before the end of the stream", ErrSizeMismatch)
	}
	if err != nil {
		if r.err != nil && !errors.Is(err, r.err) {
			err = fmt.Errorf("%w (stream: %w)", err, r.err)
		}
		s.log.Debug("put failed", "key", hdr.GetKey(), "error", err)
		return ToStatus(err)
	}
	return stream.SendAndClose(&storagev1.PutResponse{Object: objectToProto(obj)})
}

// streamReader presents the data chunks of a Put or PutPart stream as an io.Reader. It
// returns io.EOF only after a PutFinish whose digest matches the bytes received (and, for a
// part, the digest its header announced), and only when exactly size bytes arrived;
// otherwise it returns an error wrapping ErrSizeMismatch or ErrDigestMismatch, so an
// implementation that commits on io.EOF commits only intact data.
type streamReader struct {
	recv     func() (streamMsg, error)
	size     int64
	want     []byte // the digest announced up front; nil for Put
	n        int64
	hash     hash.Hash
	pending  []byte
	sum      []byte // the verified digest, once finished
	finished bool
	err      error
}

// streamMsg is one message of a Put or PutPart stream after its header.
type streamMsg struct {
	chunk  []byte
	finish *storagev1.PutFinish
	other  any // anything else: a protocol error
}

func putStream(stream storagev1.StorageService_PutServer) func() (streamMsg, error) {
	return func() (streamMsg, error) {
		msg, err := stream.Recv()
		if err != nil {
			return streamMsg{}, err
		}
		switch m := msg.GetMsg().(type) {
		case *storagev1.PutRequest_Chunk:
			return streamMsg{chunk: m.Chunk}, nil
		case *storagev1.PutRequest_Finish:
			return streamMsg{finish: m.Finish}, nil
		default:
			return streamMsg{other: m}, nil
		}
	}
}

func partStream(stream storagev1.StorageService_PutPartServer) func() (streamMsg, error) {
	return func() (streamMsg, error) {
		msg, err := stream.Recv()
		if err != nil {
			return streamMsg{}, err
		}
		switch m := msg.GetMsg().(type) {
		case *storagev1.PutPartRequest_Chunk:
			return streamMsg{chunk: m.Chunk}, nil
		case *storagev1.PutPartRequest_Finish:
			return streamMsg{finish: m.Finish}, nil
		default:
			return streamMsg{other: m}, nil
		}
	}
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.finished {
		return 0, io.EOF
	}
	for len(r.pending) == 0 {
		msg, err := r.recv()
		if err == io.EOF {
			return 0, r.fail(fmt.Errorf("%w: stream ended after %d of %d bytes without a finish message", ErrSizeMismatch, r.n, r.size))
		}
		if err != nil {
			return 0, r.fail(FromStatus(err))
		}
		switch {
		case msg.chunk != nil:
			if len(msg.chunk) > CopyBufferSize {
				return 0, r.fail(fmt.Errorf("%w: chunk of %d bytes exceeds %d", ErrSizeMismatch, len(msg.chunk), CopyBufferSize))
			}
			if r.n+int64(len(msg.chunk)) > r.size {
				return 0, r.fail(fmt.Errorf("%w: more than the declared %d bytes", ErrSizeMismatch, r.size))
			}
			r.n += int64(len(msg.chunk))
			r.hash.Write(msg.chunk)
			r.pending = msg.chunk
		case msg.finish != nil:
			if r.n != r.size {
				return 0, r.fail(fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, r.n, r.size))
			}
			sum := r.hash.Sum(nil)
			if !bytes.Equal(sum, msg.finish.GetSha256()) {
				return 0, r.fail(fmt.Errorf("%w: received %x, sender computed %x", ErrDigestMismatch, sum, msg.finish.GetSha256()))
			}
			if r.want != nil && !bytes.Equal(sum, r.want) {
				return 0, r.fail(fmt.Errorf("%w: received %x, the part's sha256 is %x", ErrDigestMismatch, sum, r.want))
			}
			r.sum = sum
			r.finished = true
			return 0, io.EOF
		case msg.other != nil:
			return 0, r.fail(fmt.Errorf("%w: unexpected %T in the stream", ErrSizeMismatch, msg.other))
		default:
			// An empty chunk: nothing to hand out, read on.
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// writeTo writes every data chunk to w as it arrives, without copying it, until the
// verified end of the stream (io.EOF from Read is returned as nil here), and returns the
// bytes written.
func (r *streamReader) writeTo(w io.Writer) (int64, error) {
	var n int64
	for {
		if len(r.pending) > 0 {
			m, err := w.Write(r.pending)
			n += int64(m)
			r.pending = r.pending[m:]
			if err != nil {
				return n, err
			}
			continue
		}
		// Refill through Read with an empty buffer: it receives the next message and
		// keeps all of the size and digest checks in one place.
		if _, err := r.Read(nil); err != nil {
			if err == io.EOF {
				return n, nil
			}
			return n, err
		}
	}
}

func (r *streamReader) fail(err error) error {
	r.err = err
	return err
}

func (s *grpcServer) Stat(ctx context.Context, req *storagev1.StatRequest) (*storagev1.StatResponse, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	if err := ValidKey(req.GetKey()); err != nil {
		return nil, ToStatus(err)
	}
	obj, err := st.Stat(ctx, req.GetKey())
	if err != nil {
		return nil, ToStatus(err)
	}
	return &storagev1.StatResponse{Object: objectToProto(obj)}, nil
}

func (s *grpcServer) Delete(ctx context.Context, req *storagev1.DeleteRequest) (*storagev1.DeleteResponse, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	if err := ValidKey(req.GetKey()); err != nil {
		return nil, ToStatus(err)
	}
	if err := st.Delete(ctx, req.GetKey()); err != nil {
		return nil, ToStatus(err)
	}
	return &storagev1.DeleteResponse{}, nil
}

func (s *grpcServer) Health(ctx context.Context, _ *storagev1.HealthRequest) (*storagev1.HealthResponse, error) {
	st, err := s.current()
	if err != nil {
		return nil, err
	}
	hc, ok := st.(HealthChecker)
	if !ok {
		return &storagev1.HealthResponse{Message: "ok (backend has no health check)"}, nil
	}
	if err := hc.Health(ctx); err != nil {
		if !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return nil, ToStatus(err)
	}
	return &storagev1.HealthResponse{Message: "ok"}, nil
}

func objectToProto(o Object) *storagev1.Object {
	return &storagev1.Object{Key: o.Key, Size: o.Size, Sha256: o.SHA256, Location: o.Location}
}
