// Package upload is the upload service: it creates uploads, stages their parts, delivers
// the assembled file to the storage backend, cancels and expires them. It holds the rules;
// package api only translates HTTP.
package upload

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host"
	"github.com/chunked-uploader/chunked-uploader/host/auth"
	"github.com/chunked-uploader/chunked-uploader/host/metrics"
	"github.com/chunked-uploader/chunked-uploader/host/node"
	"github.com/chunked-uploader/chunked-uploader/host/sqlite"
	"github.com/chunked-uploader/chunked-uploader/host/staging"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Backend is the storage the service delivers to (a pluginmgr.Manager in production).
type Backend interface {
	Name() string
	PutChecked(ctx context.Context, key string, r io.Reader, size int64, want []byte) (sdk.Object, error)
	Health(ctx context.Context) error

	// Parts returns the backend's part-wise limits, nil when it stores objects whole only;
	// the sdk.PartStorage methods are used only when it is not nil.
	Parts() *sdk.PartLimits
	BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error)
	PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, r io.Reader) ([]byte, error)
	CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sha256 []byte) (sdk.Object, error)
	AbortObject(ctx context.Context, key string, handle []byte) error
}

// Notifier is woken when a webhook event was queued. It must not block.
type Notifier interface {
	Wake()
}

// Options configure a Service.
type Options struct {
	ChunkSize     int64
	TTL           time.Duration
	MaxUpload     int64
	MaxParts      int64
	CompleteWait  time.Duration
	MaxDeliveries int
	// PartDeliveries bounds the parts sent to the backend at once in the background, in
	// total; PartDeliveriesPerUpload, for one upload.
	PartDeliveries          int
	PartDeliveriesPerUpload int
	CleanupInterval         time.Duration
	// MaxPartWrites bounds the part writes in flight in all, MaxPartWritesPerUpload for one
	// upload; beyond them a part write is refused with too_many_requests.
	MaxPartWrites          int
	MaxPartWritesPerUpload int
	// PartWritesChanged, if set, is called with the number of part writes in flight each
	// time it changes (under a lock: it must be quick). The host sizes its memory limit
	// by it (package memlimit).
	PartWritesChanged func(inFlight int)
	// Retention is how long records of complete and expired uploads are kept; 0 keeps them.
	Retention time.Duration
	// StagingReserve is the space (bytes) init leaves free on the staging disk.
	StagingReserve int64
	// DigestBacklog: the whole-file digest of parts written into a backend's part file
	// yields to parts being received until an upload has this many bytes of received
	// parts not yet in it (see partfile.go); 0: it never yields.
	DigestBacklog int64
	Logger        hclog.Logger
	Metrics       *metrics.Metrics // optional
	Notifier      Notifier

	// NodeID is written into the ids of new uploads (package node); "" for a single server.
	NodeID string
}

// Service implements the upload life cycle. It is safe for concurrent use.
type Service struct {
	db      *sqlite.DB
	stage   *staging.Dir
	backend Backend
	tokens  *auth.Tokens
	opt     Options
	log     hclog.Logger
	now     func() time.Time
	free    func() (int64, error) // space left on the staging disk

	// Locks, striped by upload id. A part commit holds its upload's lock for reading and
	// its part's lock; state changes that must not interleave with a commit (start of a
	// delivery, cancel, expiry) hold the upload's lock for writing.
	uploadLocks [64]sync.RWMutex
	partLocks   [256]sync.Mutex

	// Deliveries in progress.
	jobsMu sync.Mutex
	jobs   map[string]*job
	slots  chan struct{}

	// Background delivery of part-wise uploads (pump.go) and the queue of aborts (abort.go).
	writers  writers      // part writes in flight (writers.go)
	reserved reservations // staging space promised (reserve.go)

	pumpsMu   sync.Mutex
	pumps     map[string]*pump
	partSlots chan struct{}
	abortWake chan struct{}

	ctx    context.Context // cancelled by Close: deliveries stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Service.
func New(db *sqlite.DB, stage *staging.Dir, backend Backend, tokens *auth.Tokens, opt Options) *Service {
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	if opt.MaxDeliveries < 1 {
		opt.MaxDeliveries = 1
	}
	if opt.MaxPartWrites < 1 {
		opt.MaxPartWrites = 64
	}
	if opt.MaxPartWritesPerUpload < 1 {
		opt.MaxPartWritesPerUpload = 16
	}
	if opt.PartDeliveries < 1 {
		opt.PartDeliveries = 8
	}
	if opt.PartDeliveriesPerUpload < 1 {
		opt.PartDeliveriesPerUpload = 4
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		db: db, stage: stage, backend: backend, tokens: tokens, opt: opt,
		log: opt.Logger, now: time.Now, free: stage.Free,
		jobs:      map[string]*job{},
		slots:     make(chan struct{}, opt.MaxDeliveries),
		pumps:     map[string]*pump{},
		partSlots: make(chan struct{}, opt.PartDeliveries),
		abortWake: make(chan struct{}, 1),
		ctx:       ctx, cancel: cancel,
	}
}

// BackendName is the name of the storage backend.
func (s *Service) BackendName() string { return s.backend.Name() }

// Health checks the storage backend.
func (s *Service) Health(ctx context.Context) error { return s.backend.Health(ctx) }

func (s *Service) uploadLock(id string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(id))
	return &s.uploadLocks[h.Sum32()%uint32(len(s.uploadLocks))]
}

func (s *Service) partLock(id string, n int) *sync.Mutex {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", id, n)
	return &s.partLocks[h.Sum32()%uint32(len(s.partLocks))]
}

// upload reads an upload, turning a missing one into upload_not_found.
func (s *Service) upload(ctx context.Context, id string) (*host.Upload, error) {
	u, err := s.db.Upload(ctx, id)
	if err == host.ErrNoRecord {
		return nil, host.Errorf(host.CodeUploadNotFound, "upload %s not found", safeID(id))
	}
	return u, err
}

// safeID keeps an id from the URL printable and short in messages.
func safeID(id string) string {
	if len(id) > 64 {
		id = id[:64] + "..."
	}
	return fmt.Sprintf("%q", id)[1 : len(fmt.Sprintf("%q", id))-1]
}

// newID returns a new upload id: a random UUID v4 that names this node (package node).
func (s *Service) newID() string { return node.NewID(s.opt.NodeID) }

// Start recovers from an unclean stop and starts the cleanup loop: temporaries of part
// writes that were in flight are removed, and deliveries that were running are started
// again (staged parts are kept until a delivery is confirmed, so this is always possible).
func (s *Service) Start(ctx context.Context) error {
	ids, err := s.stage.Uploads()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := s.stage.RemoveTemporaries(id); err != nil {
			s.log.Warn("removing temporary part files", "upload_id", id, "error", err)
		}
	}
	if err := s.restoreReservations(ctx); err != nil {
		return err
	}
	partwise, err := s.db.PartwiseIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range partwise {
		u, err := s.db.Upload(ctx, id)
		if err != nil {
			return err
		}
		s.pumpFor(u.ID, u.Key()).kick(-1)
	}
	finalizing, err := s.db.IDsWithStatus(ctx, host.StatusFinalizing)
	if err != nil {
		return err
	}
	for _, id := range finalizing {
		u, err := s.db.Upload(ctx, id)
		if err != nil {
			return err
		}
		s.log.Info("resuming delivery interrupted by a restart", "upload_id", id)
		s.startJob(u)
	}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.cleanupLoop()
	}()
	go func() {
		defer s.wg.Done()
		s.abortLoop()
	}()
	return nil
}

// Close stops deliveries in progress (they are resumed at the next Start) and waits for
// the background work to end.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}

// WholeOnly gives a Backend that stores objects whole only the part-wise methods: Parts
// is nil and the others fail with sdk.ErrNotSupported. Embed it.
type WholeOnly struct{}

// Parts implements Backend.
func (WholeOnly) Parts() *sdk.PartLimits { return nil }

// BeginObject implements Backend.
func (WholeOnly) BeginObject(context.Context, string, sdk.ObjectSpec) ([]byte, error) {
	return nil, sdk.ErrNotSupported
}

// PutPart implements Backend.
func (WholeOnly) PutPart(context.Context, []byte, sdk.PartInfo, io.Reader) ([]byte, error) {
	return nil, sdk.ErrNotSupported
}

// CommitObject implements Backend.
func (WholeOnly) CommitObject(context.Context, []byte, [][]byte, []byte) (sdk.Object, error) {
	return sdk.Object{}, sdk.ErrNotSupported
}

// AbortObject implements Backend.
func (WholeOnly) AbortObject(context.Context, string, []byte) error { return sdk.ErrNotSupported }
