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
}

// Notifier is woken when a webhook event was queued. It must not block.
type Notifier interface {
	Wake()
}

// Options configure a Service.
type Options struct {
	ChunkSize       int64
	TTL             time.Duration
	MaxUpload       int64
	MaxParts        int64
	CompleteWait    time.Duration
	MaxDeliveries   int
	CleanupInterval time.Duration
	// Retention is how long records of complete and expired uploads are kept; 0 keeps them.
	Retention time.Duration
	// StagingReserve is the space (bytes) init leaves free on the staging disk.
	StagingReserve int64
	Logger         hclog.Logger
	Metrics        *metrics.Metrics // optional
	Notifier       Notifier

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
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		db: db, stage: stage, backend: backend, tokens: tokens, opt: opt,
		log: opt.Logger, now: time.Now, free: stage.Free,
		jobs:  map[string]*job{},
		slots: make(chan struct{}, opt.MaxDeliveries),
		ctx:   ctx, cancel: cancel,
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
	if err == host.ErrNotFound {
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
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.cleanupLoop()
	}()
	return nil
}

// Close stops deliveries in progress (they are resumed at the next Start) and waits for
// the background work to end.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
}
