package s3store

import (
	"sync"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Part-wise storage (sdk.PartStorage) maps one to one onto an S3 multipart upload:
//
//   - BeginObject aborts the unfinished multipart uploads of the key and starts a new one
//     (begin.go). The handle encodes bucket, key, upload id, the object's shape and a random
//     nonce (handle.go); it is all a later process needs.
//   - PutPart is one UploadPart, streamed from the host's reader, with the part's SHA-256
//     both as the SigV4 payload hash and as its ChecksumSHA256 (putpart.go). The receipt
//     holds part number, ETag and SHA-256.
//   - CommitObject is CompleteMultipartUpload naming every part's ETag and SHA-256
//     (commit.go); AbortObject is AbortMultipartUpload (abort.go).
//
// Host parts count from 0, S3 parts from 1: host part n is S3 part n+1.
var (
	_ sdk.PartStorage = (*Store)(nil)

	partLimits = sdk.PartLimits{MinPartSize: minPartSize, MaxParts: maxParts}
)

// User metadata of part-wise objects, set at CreateMultipartUpload (the only time S3 takes
// metadata for a multipart object): metaObjectID holds the handle's nonce in hex, and
// metaSHA256 the whole object's digest when it was declared at BeginObject.
const metaObjectID = "chunked-uploader-id"

// PartLimits implements sdk.PartStorage with S3's limits: parts but the last of at least
// 5 MiB, at most 10,000 parts. The sdk declines other objects and the host uses Put.
func (s *Store) PartLimits() sdk.PartLimits { return partLimits }

// partLocks serializes, within this process, the PutPart calls for the same part of the
// same upload: a failed PutPart replaces the part with an empty one (see PutPart), which
// must not land after a concurrent successful send of that part.
type partLocks struct {
	mu sync.Mutex
	m  map[partID]*partLock
}

type partID struct {
	uploadID string
	number   int
}

type partLock struct {
	sync.Mutex
	refs int
}

// lock locks part id and returns its unlock function.
func (l *partLocks) lock(id partID) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[partID]*partLock{}
	}
	pl := l.m[id]
	if pl == nil {
		pl = &partLock{}
		l.m[id] = pl
	}
	pl.refs++
	l.mu.Unlock()
	pl.Lock()
	return func() {
		pl.Unlock()
		l.mu.Lock()
		if pl.refs--; pl.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
}
