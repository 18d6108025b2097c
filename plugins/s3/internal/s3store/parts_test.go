package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hashicorp/go-plugin"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
	"github.com/chunked-uploader/chunked-uploader/sdk/storagetest/plugintest"
)

// partObject is an object cut into parts, for the part-wise tests.
type partObject = plugintest.Object

// partEnv is a store on a bucket of its own and an S3 client to look behind its back.
type partEnv struct {
	srv    server
	bucket string
	admin  *s3.Client
	st     *Store
}

func newPartEnv(t *testing.T) *partEnv {
	t.Helper()
	srv := testServer(t)
	bucket := srv.newBucket(t)
	return &partEnv{srv: srv, bucket: bucket, admin: srv.client(), st: openStore(t, srv.settings(bucket))}
}

// reopen returns a new Store on the same bucket, as a restarted plugin builds.
func (e *partEnv) reopen(t *testing.T) *Store { return openStore(t, e.srv.settings(e.bucket)) }

func (e *partEnv) begin(t *testing.T, ps sdk.PartStorage, o partObject) []byte {
	return plugintest.Begin(t, ps, o)
}

func (e *partEnv) put(t *testing.T, ps sdk.PartStorage, h []byte, o partObject, n int) []byte {
	return plugintest.Put(t, ps, h, o, n)
}

// putAll sends every part, in a random order and all at once, and returns the receipts in
// part order.
func (e *partEnv) putAll(t *testing.T, ps sdk.PartStorage, h []byte, o partObject) [][]byte {
	return plugintest.PutAll(t, ps, h, o, 0)
}

func (e *partEnv) commit(t *testing.T, ps sdk.PartStorage, h []byte, o partObject, receipts [][]byte) sdk.Object {
	t.Helper()
	obj, err := ps.CommitObject(t.Context(), h, receipts, o.SHA256())
	if err != nil {
		t.Fatalf("CommitObject(%q): %v", o.Key, err)
	}
	if obj.Key != o.Key || obj.Size != o.Spec.Size || !bytes.Equal(obj.SHA256, o.SHA256()) || obj.Location != "s3://"+e.bucket+"/"+o.Key {
		t.Errorf("CommitObject returned %+v, want key %q, size %d, sha256 %x, location s3://%s/%s",
			obj, o.Key, o.Spec.Size, o.SHA256(), e.bucket, o.Key)
	}
	return obj
}

// checkStored reads the object back and checks its bytes, and that no upload is left.
func (e *partEnv) checkStored(t *testing.T, o partObject) {
	t.Helper()
	out, err := e.admin.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(o.Key)})
	if err != nil {
		t.Fatalf("GetObject(%q): %v", o.Key, err)
	}
	defer out.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, out.Body)
	if err != nil {
		t.Fatalf("reading %q back: %v", o.Key, err)
	}
	if n != o.Spec.Size || !bytes.Equal(h.Sum(nil), o.SHA256()) {
		t.Errorf("%q reads back as %d bytes with sha256 %x, want %d bytes with %x", o.Key, n, h.Sum(nil), o.Spec.Size, o.SHA256())
	}
	e.checkNoUploads(t)
}

// checkInvisible checks that no object is under key.
func (e *partEnv) checkInvisible(t *testing.T, key string) {
	t.Helper()
	_, err := e.admin.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if !isNotFound(err) {
		t.Errorf("HeadObject(%q): got %v, want NotFound: the object must not be visible", key, err)
	}
}

func (e *partEnv) uploads(t *testing.T) []types.MultipartUpload {
	t.Helper()
	u, err := listUploads(t.Context(), e.admin, e.bucket)
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	return u
}

func (e *partEnv) checkNoUploads(t *testing.T) {
	t.Helper()
	if u := e.uploads(t); len(u) != 0 {
		t.Errorf("%d multipart uploads in progress, want none: %v", len(u), u)
	}
}

// parts lists the parts S3 holds for the upload of h.
func (e *partEnv) parts(t *testing.T, h []byte) []types.Part {
	t.Helper()
	hd, err := e.st.decodeHandle(h)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.admin.ListParts(t.Context(), &s3.ListPartsInput{Bucket: aws.String(e.bucket), Key: aws.String(hd.key), UploadId: aws.String(hd.uploadID)})
	if err != nil {
		t.Fatalf("ListParts: %v", err)
	}
	return out.Parts
}

// remote serves st through the sdk's gRPC plugin glue (go-plugin's in-process test
// connection) and returns the configured Remote a host would use.
func remote(t *testing.T, st *Store) pluginhost.Remote {
	t.Helper()
	ps := map[string]plugin.Plugin{sdk.PluginName: &pluginhost.Plugin{Plugin: sdk.Plugin{
		Name:    "s3",
		Factory: func(context.Context, sdk.Config, sdk.Logger) (sdk.Storage, error) { return st, nil },
	}}}
	client, srv := plugin.TestPluginGRPCConn(t, false, ps)
	t.Cleanup(func() {
		srv.Stop()
		client.Close()
	})
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	r := raw.(pluginhost.Remote)
	info, err := r.Configure(t.Context(), sdk.Config{})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if info.Parts == nil || *info.Parts != partLimits {
		t.Fatalf("Configure announced part-wise storage %+v, want %+v", info.Parts, partLimits)
	}
	return r
}

// partStore is a Store, directly or through gRPC.
type partStore interface {
	sdk.Storage
	sdk.PartStorage
}

// TestParts stores objects part by part, directly and over gRPC: parts in a random order
// and concurrently, a declared digest recorded in the metadata, and a part sent again.
func TestParts(t *testing.T) {
	e := newPartEnv(t)
	for name, ps := range map[string]partStore{"Direct": e.st, "GRPC": remote(t, e.st)} {
		t.Run(name, func(t *testing.T) {
			t.Run("RandomConcurrent", func(t *testing.T) {
				o := plugintest.NewObject(name+"/random.bin", 5*minPartSize+12345, minPartSize) // 6 parts
				h := e.begin(t, ps, o)
				e.commit(t, ps, h, o, e.putAll(t, ps, h, o))
				e.checkStored(t, o)
				st, err := ps.Stat(t.Context(), o.Key)
				if err != nil || st.Size != o.Spec.Size || st.SHA256 != nil {
					t.Errorf("Stat = %+v, %v; want size %d and no digest (none was declared)", st, err, o.Spec.Size)
				}
			})
			t.Run("OnePart", func(t *testing.T) {
				o := plugintest.NewObject(name+"/small.bin", 1000, 50<<20)
				h := e.begin(t, ps, o)
				e.commit(t, ps, h, o, [][]byte{e.put(t, ps, h, o, 0)})
				e.checkStored(t, o)
			})
			t.Run("DeclaredSHA256", func(t *testing.T) {
				o := plugintest.NewObject(name+"/declared.bin", 2*minPartSize+1, minPartSize)
				o.Spec.SHA256 = o.SHA256()
				h := e.begin(t, ps, o)
				receipts := e.putAll(t, ps, h, o)
				wrong := sha256.Sum256([]byte("not the object"))
				if _, err := ps.CommitObject(t.Context(), h, receipts, wrong[:]); !errors.Is(err, sdk.ErrDigestMismatch) {
					t.Errorf("CommitObject with a digest other than the declared one: got %v, want ErrDigestMismatch", err)
				}
				e.checkInvisible(t, o.Key)
				e.commit(t, ps, h, o, receipts)
				e.checkStored(t, o)
				st, err := ps.Stat(t.Context(), o.Key)
				if err != nil || !bytes.Equal(st.SHA256, o.SHA256()) {
					t.Errorf("Stat = %+v, %v; want the declared sha256 %x", st, err, o.SHA256())
				}
			})
			t.Run("Resent", func(t *testing.T) {
				o := plugintest.NewObject(name+"/resent.bin", 2*minPartSize+7, minPartSize)
				h := e.begin(t, ps, o)
				receipts := e.putAll(t, ps, h, o)
				// The same bytes again: the same ETag and digest, so the earlier receipt
				// names exactly what S3 holds and stays valid.
				again := e.put(t, ps, h, o, 1)
				if !bytes.Equal(again, receipts[1]) {
					t.Logf("receipt of the same bytes sent again differs: %x, %x", again, receipts[1])
				}
				// Other bytes for part 0 make its earlier receipt stale.
				other := plugintest.NewObject(o.Key, o.Spec.Size, minPartSize)
				copy(other.Data, o.Data)
				other.Data[10] ^= 1
				fresh := e.put(t, ps, h, other, 0)
				if _, err := ps.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
					t.Errorf("CommitObject with the receipt of a replaced part: got %v, want ErrStaleReceipt", err)
				}
				e.checkInvisible(t, o.Key)
				// Put the original back: commit with its new receipt works.
				receipts[0] = e.put(t, ps, h, o, 0)
				_ = fresh
				e.commit(t, ps, h, o, [][]byte{receipts[0], again, receipts[2]})
				e.checkStored(t, o)
			})
		})
	}
}

// TestPartWrongBytes sends part 0 again with bytes that are not the part's: refused, and
// the part is absent afterwards, so the earlier (good) receipt no longer commits. Directly
// the server refuses the bytes; over gRPC the sdk's reader does before they are complete.
func TestPartWrongBytes(t *testing.T) {
	e := newPartEnv(t)
	for name, ps := range map[string]sdk.PartStorage{"Direct": e.st, "GRPC": remote(t, e.st)} {
		t.Run(name, func(t *testing.T) {
			o := plugintest.NewObject(name+"/wrong.bin", minPartSize+100, minPartSize)
			h := e.begin(t, ps, o)
			receipts := e.putAll(t, ps, h, o)
			bad := bytes.Clone(o.Part(0))
			bad[len(bad)-1] ^= 0xff
			if _, err := ps.PutPart(t.Context(), h, o.Info(0), bytes.NewReader(bad)); !errors.Is(err, sdk.ErrDigestMismatch) {
				t.Fatalf("PutPart with wrong bytes: got %v, want ErrDigestMismatch", err)
			}
			if parts := e.parts(t, h); len(parts) != 2 || aws.ToInt64(parts[0].Size) != 0 {
				t.Errorf("after the failed part S3 holds %d parts, the first of %d bytes; want it emptied", len(parts), aws.ToInt64(parts[0].Size))
			}
			if _, err := ps.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
				t.Errorf("CommitObject with the receipt of the part before the failed one: got %v, want ErrStaleReceipt", err)
			}
			e.checkInvisible(t, o.Key)
			receipts[0] = e.put(t, ps, h, o, 0)
			e.commit(t, ps, h, o, receipts)
			e.checkStored(t, o)
		})
	}
}

// TestPartWrongSize: a part declared with another size than the object's, and readers
// that yield fewer or more bytes than declared, are refused and leave the part absent.
func TestPartWrongSize(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("size/object.bin", 2*minPartSize, minPartSize)
	h := e.begin(t, e.st, o)
	receipts := e.putAll(t, e.st, h, o)
	short := o.Info(1)
	short.Size--
	cases := map[string]struct {
		p sdk.PartInfo
		r io.Reader
	}{
		"DeclaredShort": {short, bytes.NewReader(o.Part(1)[:short.Size])},
		"ReaderShort":   {o.Info(1), bytes.NewReader(o.Part(1)[:minPartSize-1])},
		"ReaderLong":    {o.Info(1), io.MultiReader(bytes.NewReader(o.Part(1)), bytes.NewReader([]byte("x")))},
		"NoSuchPart":    {sdk.PartInfo{Number: 2, Size: 1, SHA256: o.Info(1).SHA256}, bytes.NewReader([]byte("x"))},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := e.st.PutPart(t.Context(), h, tc.p, tc.r); !errors.Is(err, sdk.ErrSizeMismatch) {
				t.Errorf("PutPart: got %v, want ErrSizeMismatch", err)
			}
			if name == "NoSuchPart" {
				return // refused before touching S3
			}
			if _, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
				t.Errorf("CommitObject with the receipt from before: got %v, want ErrStaleReceipt", err)
			}
			e.checkInvisible(t, o.Key)
			receipts[1] = e.put(t, e.st, h, o, 1)
		})
	}
	e.commit(t, e.st, h, o, receipts)
	e.checkStored(t, o)
}

// TestPartCommitRefused: commits with missing, misplaced, forged and foreign receipts fail
// with ErrStaleReceipt and leave nothing visible, and the object can still be committed.
func TestPartCommitRefused(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("refused/object.bin", 3*minPartSize, minPartSize)
	h := e.begin(t, e.st, o)
	r0, r1 := e.put(t, e.st, h, o, 0), e.put(t, e.st, h, o, 1) // part 2 not sent yet
	other := plugintest.NewObject("refused/other.bin", 3*minPartSize, minPartSize)
	oh := e.begin(t, e.st, other)
	foreign := e.put(t, e.st, oh, other, 2)
	forged := (&receipt{number: 2, etag: `"0123456789abcdef0123456789abcdef"`, sha256: o.Info(2).SHA256}).encode()
	cases := map[string][][]byte{
		"Missing":   {r0, r1},
		"Nil":       {r0, r1, nil},
		"Misplaced": {r0, r1, r1},
		"Order":     {r1, r0, r0},
		"Forged":    {r0, r1, forged},
		"Foreign":   {r0, r1, foreign},
		"Garbage":   {r0, r1, []byte("garbage")},
		"TooMany":   {r0, r1, forged, forged},
	}
	for name, receipts := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
				t.Errorf("CommitObject: got %v, want ErrStaleReceipt", err)
			}
			e.checkInvisible(t, o.Key)
		})
	}
	// The other upload is untouched by all of this.
	if parts := e.parts(t, oh); len(parts) != 1 {
		t.Errorf("the other upload has %d parts, want 1", len(parts))
	}
	if err := e.st.AbortObject(t.Context(), other.Key, oh); err != nil {
		t.Fatalf("AbortObject: %v", err)
	}
	e.commit(t, e.st, h, o, [][]byte{r0, r1, e.put(t, e.st, h, o, 2)})
	e.checkStored(t, o)
}

// TestPartAbort: after AbortObject nothing of the object remains, its handle is unknown to
// the other calls, and aborting again is not an error.
func TestPartAbort(t *testing.T) {
	e := newPartEnv(t)
	for name, ps := range map[string]sdk.PartStorage{"Direct": e.st, "GRPC": remote(t, e.st)} {
		t.Run(name, func(t *testing.T) {
			o := plugintest.NewObject(name+"/aborted.bin", minPartSize+1, minPartSize)
			h := e.begin(t, ps, o)
			receipts := e.putAll(t, ps, h, o)
			if err := ps.AbortObject(t.Context(), o.Key, h); err != nil {
				t.Fatalf("AbortObject: %v", err)
			}
			e.checkNoUploads(t)
			e.checkInvisible(t, o.Key)
			if _, err := ps.PutPart(t.Context(), h, o.Info(1), bytes.NewReader(o.Part(1))); !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("PutPart after abort: got %v, want ErrNotFound", err)
			}
			if _, err := ps.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("CommitObject after abort: got %v, want ErrNotFound", err)
			}
			if err := ps.AbortObject(t.Context(), o.Key, h); err != nil {
				t.Errorf("AbortObject again: %v", err)
			}
			e.checkNoUploads(t)
			e.checkInvisible(t, o.Key)
		})
	}
}

// TestPartAbortKey: AbortObject without a handle, and BeginObject, abort the unfinished
// uploads of exactly their key, not of keys that extend it.
func TestPartAbortKey(t *testing.T) {
	e := newPartEnv(t)
	const key = "leftovers/object.bin"
	create := func(k string) string {
		out, err := e.admin.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(e.bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("CreateMultipartUpload(%q): %v", k, err)
		}
		return aws.ToString(out.UploadId)
	}
	o := plugintest.NewObject(key, minPartSize+1, minPartSize)
	h := e.begin(t, e.st, o)
	e.put(t, e.st, h, o, 0)
	create(key)
	create(key)
	keep := map[string]bool{create(key + ".other"): true, create(key + "/below"): true}
	keys := func() (n int) {
		for _, u := range e.uploads(t) {
			if keep[aws.ToString(u.UploadId)] {
				continue
			}
			if aws.ToString(u.Key) != key {
				t.Errorf("upload %s of %q is gone or unexpected", aws.ToString(u.UploadId), aws.ToString(u.Key))
			}
			n++
		}
		return n
	}
	if n := keys(); n != 3 {
		t.Fatalf("%d uploads of %q, want 3", n, key)
	}
	if err := e.st.AbortObject(t.Context(), key, nil); err != nil {
		t.Fatalf("AbortObject(%q, nil): %v", key, err)
	}
	if n := keys(); n != 0 {
		t.Errorf("%d uploads of %q after AbortObject(key, nil), want 0", n, key)
	}
	if u := e.uploads(t); len(u) != 2 {
		t.Errorf("%d uploads left, want the 2 of other keys", len(u))
	}
	if err := e.st.AbortObject(t.Context(), key, nil); err != nil {
		t.Errorf("AbortObject(%q, nil) with nothing to abort: %v", key, err)
	}
	if _, err := e.st.PutPart(t.Context(), h, o.Info(1), bytes.NewReader(o.Part(1))); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart on an aborted handle: got %v, want ErrNotFound", err)
	}

	// BeginObject aborts the earlier unfinished uploads of its key.
	create(key)
	h1 := e.begin(t, e.st, o)
	h2 := e.begin(t, e.st, o)
	if n := keys(); n != 1 {
		t.Errorf("%d uploads of %q after two BeginObject calls, want 1", n, key)
	}
	if _, err := e.st.PutPart(t.Context(), h1, o.Info(0), bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("PutPart on the handle of the earlier BeginObject: got %v, want ErrNotFound", err)
	}
	e.commit(t, e.st, h2, o, e.putAll(t, e.st, h2, o))
	if u := e.uploads(t); len(u) != 2 {
		t.Errorf("%d uploads left, want the 2 of other keys", len(u))
	}
}

// TestPartRestart: a handle and receipts keep working in new Store instances, as after a
// plugin restart, and committing an already committed handle returns the object again.
func TestPartRestart(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("restart/object.bin", 3*minPartSize+5, minPartSize)
	h := e.begin(t, e.st, o)
	receipts := [][]byte{e.put(t, e.st, h, o, 0), e.put(t, e.st, h, o, 1), nil, nil}
	second := e.reopen(t)
	receipts[2], receipts[3] = e.put(t, second, h, o, 2), e.put(t, second, h, o, 3)
	third := e.reopen(t)
	e.commit(t, third, h, o, receipts)
	e.checkStored(t, o)
	e.commit(t, e.reopen(t), h, o, receipts)
	// The handle of a committed object does not abort it.
	if err := e.reopen(t).AbortObject(t.Context(), o.Key, h); err != nil {
		t.Errorf("AbortObject of a committed handle: %v", err)
	}
	e.checkStored(t, o)
}

// TestPartPluginRestart: a handle and receipts outlive the plugin process. The object is
// begun and half sent by one plugin process, which is then killed; a second one sends the
// rest and commits; a third commits again and gets the object.
func TestPartPluginRestart(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("process/object.bin", 3*minPartSize+5, minPartSize)
	first, _, kill := startPluginKill(t, e.srv.settings(e.bucket))
	h := e.begin(t, first, o)
	receipts := [][]byte{e.put(t, first, h, o, 0), e.put(t, first, h, o, 1), nil, nil}
	kill()
	if _, err := first.PutPart(t.Context(), h, o.Info(2), bytes.NewReader(o.Part(2))); err == nil {
		t.Fatal("PutPart through a killed plugin succeeded")
	}
	second, _ := startPlugin(t, e.srv.settings(e.bucket))
	receipts[2], receipts[3] = e.put(t, second, h, o, 2), e.put(t, second, h, o, 3)
	e.commit(t, second, h, o, receipts)
	e.checkStored(t, o)
	third, _ := startPlugin(t, e.srv.settings(e.bucket))
	e.commit(t, third, h, o, receipts)
}

// TestPartCommitGone: when the upload is gone, a commit succeeds only for the object this
// very handle made; an object put under the key otherwise is not taken for it.
func TestPartCommitGone(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("gone/object.bin", minPartSize+1, minPartSize)
	h := e.begin(t, e.st, o)
	receipts := e.putAll(t, e.st, h, o)
	if err := e.st.AbortObject(t.Context(), o.Key, h); err != nil {
		t.Fatalf("AbortObject: %v", err)
	}
	if _, err := e.st.Put(t.Context(), o.Key, bytes.NewReader(o.Data), o.Spec.Size); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if _, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("CommitObject of an aborted handle over an object put otherwise: got %v, want ErrNotFound", err)
	}
}

// TestPartHostileHandles: handles this store did not issue, or issued for another bucket
// or key, are refused with ErrNotFound by every call and reach nothing.
func TestPartHostileHandles(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("hostile/object.bin", minPartSize+1, minPartSize)
	h := e.begin(t, e.st, o)
	good, err := e.st.decodeHandle(h)
	if err != nil {
		t.Fatalf("decodeHandle of a handle BeginObject returned: %v", err)
	}
	victim := plugintest.NewObject("hostile/victim.bin", minPartSize+1, minPartSize)
	vh := e.begin(t, e.st, victim)
	vgood, _ := e.st.decodeHandle(vh)
	otherBucket := e.srv.newBucket(t)
	elsewhere := openStore(t, e.srv.settings(otherBucket))
	eh := e.begin(t, elsewhere, o)

	receipts := e.putAll(t, e.st, h, o)
	vreceipts := e.putAll(t, e.st, vh, victim)

	mod := func(f func(*handle)) []byte {
		c := *good
		f(&c)
		return c.encode()
	}
	cases := map[string][]byte{
		"OtherBucket":   eh,
		"EscapingKey":   mod(func(h *handle) { h.key = "../outside" }),
		"AbsoluteKey":   mod(func(h *handle) { h.key = "/etc/passwd" }),
		"OtherKey":      mod(func(h *handle) { h.key = victim.Key }),              // our upload id, the victim's key
		"OtherUploadID": mod(func(h *handle) { h.uploadID = vgood.uploadID }),     // the victim's upload id, our key
		"ControlChars":  mod(func(h *handle) { h.uploadID = "x\r\nHost: evil" }),  // header injection
		"TooManyParts":  mod(func(h *handle) { h.spec.PartCount = maxParts + 1 }), // outside the limits
		"Inconsistent":  mod(func(h *handle) { h.spec.Size = 100 * minPartSize }), // size and parts disagree
		"Truncated":     h[:len(h)-1],
		"Trailing":      append(bytes.Clone(h), 0),
		"Version":       append([]byte{2}, h[1:]...),
		"Garbage":       []byte("garbage"),
		"Empty":         {},
	}
	for name, bad := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := e.st.PutPart(t.Context(), bad, o.Info(0), bytes.NewReader(o.Part(0))); !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("PutPart: got %v, want ErrNotFound", err)
			}
			if _, err := e.st.CommitObject(t.Context(), bad, receipts, o.SHA256()); !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("CommitObject: got %v, want ErrNotFound", err)
			}
			if err := e.st.AbortObject(t.Context(), o.Key, bad); err != nil && !errors.Is(err, sdk.ErrNotFound) {
				t.Errorf("AbortObject: got %v, want nil or ErrNotFound", err)
			}
		})
	}
	// A handle for one key cannot abort another key's upload.
	if err := e.st.AbortObject(t.Context(), o.Key, vh); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("AbortObject(%q) with the handle of %q: got %v, want ErrNotFound", o.Key, victim.Key, err)
	}
	// Nothing was reached: both uploads are intact and commit, and the other bucket holds
	// only its own upload.
	e.commit(t, e.st, h, o, receipts)
	e.commit(t, e.st, vh, victim, vreceipts)
	if u, err := listUploads(t.Context(), e.admin, otherBucket); err != nil || len(u) != 1 {
		t.Errorf("other bucket has uploads %v (err %v), want its one", u, err)
	}
	if names, _ := listNames(t.Context(), e.admin, e.bucket); len(names) != 2 {
		t.Errorf("bucket holds %q, want the two objects only", names)
	}
}

// TestPartDeclined: objects S3 cannot take part-wise are declined with ErrNotSupported,
// leaving nothing.
func TestPartDeclined(t *testing.T) {
	e := newPartEnv(t)
	cases := map[string]sdk.ObjectSpec{
		"Empty":      {Size: 0, PartSize: minPartSize, PartCount: 0},
		"SmallParts": {Size: 3 << 20, PartSize: 1 << 20, PartCount: 3},
		"TooMany":    {Size: (maxParts + 1) * minPartSize, PartSize: minPartSize, PartCount: maxParts + 1},
		"HugeParts":  {Size: 2 * (maxPartSize + 1), PartSize: maxPartSize + 1, PartCount: 2},
	}
	for name, spec := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := e.st.BeginObject(t.Context(), "declined.bin", spec); !errors.Is(err, sdk.ErrNotSupported) {
				t.Errorf("BeginObject(%+v): got %v, want ErrNotSupported", spec, err)
			}
		})
	}
	if _, err := e.st.BeginObject(t.Context(), "../x", sdk.ObjectSpec{Size: 1, PartSize: minPartSize, PartCount: 1}); !errors.Is(err, sdk.ErrInvalidKey) {
		t.Errorf("BeginObject with an invalid key: got %v, want ErrInvalidKey", err)
	}
	e.checkNoUploads(t)
}

// TestPartMetadata: the object records the handle's nonce, and the declared digest only
// when there was one.
func TestPartMetadata(t *testing.T) {
	e := newPartEnv(t)
	o := plugintest.NewObject("meta/object.bin", minPartSize+1, minPartSize)
	o.Spec.SHA256 = o.SHA256()
	h := e.begin(t, e.st, o)
	e.commit(t, e.st, h, o, e.putAll(t, e.st, h, o))
	head, err := e.admin.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(o.Key)})
	if err != nil {
		t.Fatalf("HeadObject: %v", err)
	}
	hd, _ := e.st.decodeHandle(h)
	if head.Metadata[metaSHA256] != hex.EncodeToString(o.SHA256()) || head.Metadata[metaObjectID] != hex.EncodeToString(hd.nonce) {
		t.Errorf("metadata %v, want %s=%x and %s=%x", head.Metadata, metaSHA256, o.SHA256(), metaObjectID, hd.nonce)
	}
}

// TestPartsWithoutChecksums: with flexible checksums turned off (AWS_REQUEST_CHECKSUM_
// CALCULATION=when_required, for servers without them), uploads have no checksum
// algorithm and the signed payload hash alone makes the server refuse wrong bytes.
func TestPartsWithoutChecksums(t *testing.T) {
	e := newPartEnv(t)
	e.st.checksum = ""
	o := plugintest.NewObject("plain/object.bin", 2*minPartSize+3, minPartSize)
	h := e.begin(t, e.st, o)
	if hd, _ := e.st.decodeHandle(h); hd.sha256Parts {
		t.Fatal("the handle says the upload has the SHA-256 checksum algorithm")
	}
	receipts := e.putAll(t, e.st, h, o)
	bad := bytes.Clone(o.Part(1))
	bad[0] ^= 1
	if _, err := e.st.PutPart(t.Context(), h, o.Info(1), bytes.NewReader(bad)); !errors.Is(err, sdk.ErrDigestMismatch) {
		t.Fatalf("PutPart with wrong bytes: got %v, want ErrDigestMismatch", err)
	}
	if _, err := e.st.CommitObject(t.Context(), h, receipts, o.SHA256()); !errors.Is(err, sdk.ErrStaleReceipt) {
		t.Errorf("CommitObject with the receipt from before the failed part: got %v, want ErrStaleReceipt", err)
	}
	receipts[1] = e.put(t, e.st, h, o, 1)
	e.commit(t, e.st, h, o, receipts)
	e.checkStored(t, o)
}
