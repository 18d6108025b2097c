// Package storagetest is the conformance suite for sdk.Storage implementations. Every
// storage plugin, in this repository or not, runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		o := storagetest.Options{New: func(t *testing.T) sdk.Storage { ... }}
//		t.Run("Direct", func(t *testing.T) { storagetest.Run(t, o) })
//		t.Run("GRPC", func(t *testing.T) { storagetest.RunGRPC(t, o) })
//	}
//
// Run calls the implementation directly; RunGRPC serves it with sdk.Plugin and runs the
// same cases through the pluginhost.Remote a host would use, over a real gRPC connection,
// plus cases only the wire can produce (corrupted or truncated streams, invalid keys).
//
// Each case is a subtest that gets a fresh backend from Options.New. Cases run one after
// another, never in parallel, and call ReadBack and List with the same *testing.T they
// passed to New, so those functions may refer to the backend New returned last. A failed
// Put must leave nothing: Stat gives sdk.ErrNotFound, ReadBack an error, and List no new
// name. The Large cases measure the heap of the whole test binary, so tests running in
// parallel with the suite may disturb them.
//
// # Part-wise storage
//
// The subtests under Parts check sdk.PartStorage. Run runs them when the Storage New
// returns implements it; RunGRPC when the plugin announced part-wise storage at Configure
// (pluginhost.PluginInfo.Parts), which sdk.Plugin does for such a Storage. Parts/Support
// always runs: over gRPC it checks that the announcement matches the Storage, and for a Storage
// without part-wise storage that the four calls answer sdk.ErrNotSupported. Parts are
// 1 MiB + 4099 bytes (two gRPC chunks) or PartLimits.MinPartSize if that is larger, so a
// backend with a large minimum moves tens of MiB per case; Parts/Large sends Options.Large
// bytes in parts of 16 MiB, four at a time, and bounds the heap meanwhile (see
// Options.PartBuffers).
//
// The cases hold a backend to the contract of sdk.PartStorage: parts in any order and
// concurrently, a part sent again replacing the earlier one, a part whose bytes do not
// match its SHA-256 or size refused (sdk.ErrDigestMismatch, sdk.ErrSizeMismatch; a part
// whose declared size is not the object's size for that part number is refused with
// sdk.ErrSizeMismatch too), and after any failed PutPart the part absent (its earlier
// receipt refused with sdk.ErrStaleReceipt). The backend checks a part's bytes against
// PartInfo.SHA256 itself: directly, the suite passes it readers whose bytes do not match.
// A commit with a missing, stale, misplaced or garbled receipt fails with
// sdk.ErrStaleReceipt and shows nothing, and the handle stays usable: the part sent again,
// the commit succeeds. An unknown handle (aborted, replaced by a later BeginObject for the
// same key, or forged) gives sdk.ErrNotFound from PutPart and CommitObject. Committing
// again reports the object, and neither a PutPart nor an AbortObject after the commit
// changes it. A committed object's Size and SHA256 are those of the whole object and its
// Location is set.
//
// RunStaged and RunPartFiles run the same part-wise cases over gRPC the way a host with
// staged reads (sdk.WithStagedReads) or with part files (sdk.PartFiles) stores parts, plus
// the cases only those have; a plugin that offers either runs them too.
//
// What List may show: while an object is unfinished (between BeginObject and CommitObject
// or AbortObject, also after a failed commit), List may show names of its temporaries, but
// never the key itself unless an earlier object is stored there. After the commit List
// shows exactly the objects; after AbortObject, exactly what was there before BeginObject.
// A backend whose unfinished objects are not files (S3 multipart uploads) should make
// List include them under names that are not keys (for example key + "#" + upload id), so
// that the suite sees what an abort leaves.
//
// Parts/Reopen needs Options.Reopen and is skipped without it: a handle and its receipts
// must survive a restart of the plugin process.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Options describes the implementation under test.
type Options struct {
	// New returns a fresh, empty backend (register cleanup with t.Cleanup). Required.
	New func(t *testing.T) sdk.Storage
	// Large is the size in bytes of the large-object cases, Large and Parts/Large; 0 means
	// 64 MiB. They are skipped under -short. At 64 MiB Parts/Large has all of its parts in
	// flight at once; a few times that also checks that buffers are let go between parts.
	Large int64
	// ReadBack, if set, returns the stored bytes of key read through other means than the
	// Storage (the file system, an S3 client, an SMB client) so the suite compares real bytes.
	// It returns an error when key holds no object.
	ReadBack func(t *testing.T, key string) (io.ReadCloser, error)
	// List, if set, returns every name present in the backend under its root, temporaries
	// included (relative, slash-separated), so the suite can check no partial or temporary
	// data is left. Directories may be left out; if listed, they are ignored when they are a
	// parent of a key the case used. For part-wise storage, see the package documentation.
	List func(t *testing.T) []string
	// Reopen, if set, returns a new Storage over the same backend state as the one New
	// returned last (the same directory, bucket or share, the same settings), built as a
	// restarted plugin process would build it: sharing nothing in memory with the earlier
	// instance. Parts/Reopen stops using the earlier instance (it closes it if it is an
	// sdk.Closer; over gRPC it also ends its plugin connection and serves the new instance
	// on a new one) and goes on with the handles and receipts the earlier one gave.
	// ReadBack and List must keep working. Without Reopen that case is skipped.
	Reopen func(t *testing.T) sdk.Storage
	// PartBuffers is how many bytes of buffers the backend holds by design for each part
	// in flight, whatever the part's size: direct-I/O buffers, a client library's send
	// buffers (what it reserves with sdk.ReserveMemory, per part). Parts/Large lets the
	// heap grow by that much more per part in flight. 0 for a backend that writes the
	// chunks its reader yields as they come.
	PartBuffers int64
}

// defaultLarge is the size of the Large case when Options.Large is 0.
const defaultLarge = 64 << 20

// env is one case's view of the backend under test.
type env struct {
	o   Options
	s   sdk.Storage
	ctx context.Context
	// settle, if set, waits until the plugin side has finished every call made so far.
	settle func(t *testing.T)
}

// testCase is one conformance case.
type testCase struct {
	name string
	run  func(t *testing.T, e *env)
}

// Run runs every case against the implementation directly.
func Run(t *testing.T, o Options) {
	t.Helper()
	checkOptions(t, o)
	for _, c := range commonCases() {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, &env{o: o, s: o.New(t), ctx: t.Context()})
		})
	}
	runParts(t, o, func(t *testing.T, u func(string)) { directPartSupport(t, o, u) },
		func(t *testing.T, st sdk.Storage) *partEnv { return openDirectParts(t, o, st) },
		partCases())
}

func checkOptions(t *testing.T, o Options) {
	t.Helper()
	if o.New == nil {
		t.Fatal("storagetest: Options.New is required")
	}
	if o.Large < 0 {
		t.Fatalf("storagetest: Options.Large is %d", o.Large)
	}
	if o.PartBuffers < 0 {
		t.Fatalf("storagetest: Options.PartBuffers is %d", o.PartBuffers)
	}
}

// data returns n deterministic, key-specific bytes.
func data(key string, n int) []byte {
	b := make([]byte, n)
	seed := sha256.Sum256([]byte(key))
	for i := 0; i < n; i += len(seed) {
		copy(b[i:], seed[:])
		seed = sha256.Sum256(seed[:])
	}
	return b
}

// put stores b under key and checks the returned Object.
func (e *env) put(t *testing.T, key string, r io.Reader, b []byte) sdk.Object {
	t.Helper()
	obj, err := e.s.Put(e.ctx, key, r, int64(len(b)))
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(b), err)
	}
	sum := sha256.Sum256(b)
	if obj.Key != key {
		t.Errorf("Put(%q) returned Key %q", key, obj.Key)
	}
	if obj.Size != int64(len(b)) {
		t.Errorf("Put(%q) returned Size %d, want %d", key, obj.Size, len(b))
	}
	if !bytes.Equal(obj.SHA256, sum[:]) {
		t.Errorf("Put(%q) returned SHA256 %x, want %x", key, obj.SHA256, sum)
	}
	if obj.Location == "" {
		t.Errorf("Put(%q) returned an empty Location", key)
	}
	return obj
}

// checkStored checks through Stat and ReadBack that key holds exactly b.
func (e *env) checkStored(t *testing.T, key string, b []byte) {
	t.Helper()
	obj, err := e.s.Stat(e.ctx, key)
	if err != nil {
		t.Fatalf("Stat(%q) after Put: %v", key, err)
	}
	sum := sha256.Sum256(b)
	if obj.Key != key {
		t.Errorf("Stat(%q) returned Key %q", key, obj.Key)
	}
	if obj.Size != int64(len(b)) {
		t.Errorf("Stat(%q) returned Size %d, want %d", key, obj.Size, len(b))
	}
	if obj.SHA256 != nil && !bytes.Equal(obj.SHA256, sum[:]) {
		t.Errorf("Stat(%q) returned SHA256 %x, want %x", key, obj.SHA256, sum)
	}
	if got, ok := e.readBack(t, key); ok && !bytes.Equal(got, b) {
		t.Errorf("ReadBack(%q): got %d bytes sha256 %x, want %d bytes sha256 %x",
			key, len(got), sha256.Sum256(got), len(b), sum)
	}
}

// readBack returns the bytes under key through Options.ReadBack; ok is false when it is not set.
func (e *env) readBack(t *testing.T, key string) (b []byte, ok bool) {
	t.Helper()
	if e.o.ReadBack == nil {
		return nil, false
	}
	rc, err := e.o.ReadBack(t, key)
	if err != nil {
		t.Fatalf("ReadBack(%q): %v", key, err)
	}
	defer rc.Close()
	b, err = io.ReadAll(rc)
	if err != nil {
		t.Fatalf("ReadBack(%q): read: %v", key, err)
	}
	return b, true
}

// checkGone checks that key holds no object after a failed Put or a Delete, and that the
// backend holds only the objects in present: no temporary or partial data is left.
func (e *env) checkGone(t *testing.T, key string, present ...string) {
	t.Helper()
	if e.settle != nil {
		e.settle(t)
	}
	if _, err := e.s.Stat(e.ctx, key); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("Stat(%q): got error %v, want one wrapping sdk.ErrNotFound", key, err)
	}
	if e.o.ReadBack != nil {
		if rc, err := e.o.ReadBack(t, key); err == nil {
			rc.Close()
			t.Errorf("ReadBack(%q) found data, want none", key)
		}
	}
	e.checkList(t, append([]string{key}, present...), present)
}

// checkList checks that Options.List shows exactly the objects in present, apart from
// directories leading to one of the keys in used.
func (e *env) checkList(t *testing.T, used, present []string) {
	t.Helper()
	if e.o.List == nil {
		return
	}
	if e.settle != nil {
		e.settle(t)
	}
	extra, missing := e.listDiff(t, used, present)
	if len(extra) > 0 || len(missing) > 0 {
		t.Errorf("List: unexpected names %q, missing %q (want exactly %q)", extra, missing, present)
	}
}

func (e *env) listDiff(t *testing.T, used, present []string) (extra, missing []string) {
	names := e.o.List(t)
	for _, n := range names {
		if slices.Contains(present, n) {
			continue
		}
		if slices.ContainsFunc(used, func(k string) bool { return strings.HasPrefix(k, n+"/") }) {
			continue // a directory on the way to a key
		}
		extra = append(extra, n)
	}
	for _, p := range present {
		if !slices.Contains(names, p) {
			missing = append(missing, p)
		}
	}
	return extra, missing
}

// failPut runs a Put under ctx that must fail, then checks that nothing is left. If want is
// not nil, the error must wrap it.
func (e *env) failPut(t *testing.T, ctx context.Context, key string, r io.Reader, size int64, want error) {
	t.Helper()
	obj, err := e.s.Put(ctx, key, r, size)
	if err == nil {
		t.Fatalf("Put(%q) succeeded (%+v), want an error", key, obj)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("Put(%q): got error %v, want one wrapping %v", key, err, want)
	}
	t.Logf("Put(%q) failed as expected: %v", key, err)
	e.checkGone(t, key)
}
