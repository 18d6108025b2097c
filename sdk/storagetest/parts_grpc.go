package storagetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// grpcPartSupport checks that the plugin announces part-wise storage at Configure exactly
// when the Storage implements sdk.PartStorage, with its limits, and that a plugin without
// it answers the part-wise calls with ErrNotSupported.
func grpcPartSupport(t *testing.T, o Options, unsupported func(why string)) {
	st := o.New(t)
	w := dial(t, st, nil, true)
	ps, isPS := st.(sdk.PartStorage)
	switch {
	case isPS && w.info.Parts == nil:
		t.Errorf("the Storage implements sdk.PartStorage but Configure announced no part-wise storage")
	case !isPS && w.info.Parts != nil:
		t.Errorf("the Storage does not implement sdk.PartStorage but Configure announced %+v", *w.info.Parts)
	case isPS:
		if *w.info.Parts != ps.PartLimits() {
			t.Errorf("Configure announced %+v, the Storage's PartLimits are %+v", *w.info.Parts, ps.PartLimits())
		}
		if got := w.remote.PartLimits(); got != *w.info.Parts {
			t.Errorf("Remote.PartLimits() = %+v after Configure announced %+v", got, *w.info.Parts)
		}
		if _, isPF := st.(sdk.PartFiles); w.info.PartFiles != isPF {
			t.Errorf("Configure announced part files %v, the Storage implements sdk.PartFiles: %v", w.info.PartFiles, isPF)
		}
		t.Logf("Configure announced part-wise storage: %+v, part files %v", *w.info.Parts, w.info.PartFiles)
		return
	}
	if w.info.Parts != nil {
		return
	}
	// Without part-wise storage every call is declined, and nothing reaches the backend.
	const key = "parts-unsupported/object.bin"
	r := w.remote
	ctx := t.Context()
	b := []byte("x")
	_, err := r.BeginObject(ctx, key, sdk.ObjectSpec{Size: 1, PartSize: 1, PartCount: 1})
	wantErr(t, "BeginObject on a plugin without part-wise storage", err, sdk.ErrNotSupported)
	_, err = r.PutPart(ctx, []byte("handle"), partInfo(0, b), bytes.NewReader(b))
	wantErr(t, "PutPart on a plugin without part-wise storage", err, sdk.ErrNotSupported)
	sum := sha256.Sum256(b)
	_, err = r.CommitObject(ctx, []byte("handle"), [][]byte{[]byte("receipt")}, sum[:])
	wantErr(t, "CommitObject on a plugin without part-wise storage", err, sdk.ErrNotSupported)
	err = r.AbortObject(ctx, key, nil)
	wantErr(t, "AbortObject on a plugin without part-wise storage", err, sdk.ErrNotSupported)
	e := &env{o: o, s: r, settle: w.settle, ctx: ctx}
	e.checkList(t, []string{key}, nil)
	unsupported("the plugin does not announce part-wise storage (pluginhost.PluginInfo.Parts is nil)")
}

// openGRPCParts returns the env of a case run over a plugin connection serving st.
func openGRPCParts(t *testing.T, o Options, st sdk.Storage) *partEnv {
	t.Helper()
	return openWireParts(t, o, st, false, nil)
}

// openWireParts returns the env of a case run over a plugin connection serving st; with
// staged, the connection is offered staged reads. The cases call the Remote that wrap
// returns (nil: the connection's own), for every connection after a restart too.
func openWireParts(t *testing.T, o Options, st sdk.Storage, staged bool, wrap func(*testing.T, *wire) pluginhost.Remote) *partEnv {
	t.Helper()
	w := dialWith(t, st, nil, true, staged)
	if w.info.Parts == nil {
		t.Skip("the plugin does not announce part-wise storage (pluginhost.PluginInfo.Parts is nil)")
	}
	var ps pluginhost.Remote = w.remote
	if wrap != nil {
		ps = wrap(t, w)
	}
	e := &partEnv{
		env: &env{o: o, s: ps, settle: w.settle, ctx: t.Context()},
		st:  st, ps: ps, limits: w.remote.PartLimits(), wire: w,
	}
	if o.Reopen != nil {
		e.restart = func(t *testing.T) *partEnv {
			t.Helper()
			w.stop()
			closeStorage(t, st)
			return e.successor(openWireParts(t, o, o.Reopen(t), staged, wrap))
		}
	}
	return e
}

// tampered returns a PartStorage on the same plugin connection whose PutPart messages pass
// through f (nil drops a message).
func (e *partEnv) tampered(f func(i int, m *storagev1.PutPartRequest) *storagev1.PutPartRequest) sdk.PartStorage {
	return pluginhost.NewRemote(&tamperClient{StorageServiceClient: e.wire.raw, part: func(s storagev1.StorageService_PutPartClient) storagev1.StorageService_PutPartClient {
		i := 0
		return &partSendFunc{StorageService_PutPartClient: s, send: func(m *storagev1.PutPartRequest) error {
			m = f(i, m)
			i++
			if m == nil {
				return nil
			}
			return s.Send(m)
		}}
	}})
}

// partSendFunc is a PutPart stream whose Send is replaced.
type partSendFunc struct {
	storagev1.StorageService_PutPartClient
	send func(m *storagev1.PutPartRequest) error
}

func (s *partSendFunc) Send(m *storagev1.PutPartRequest) error { return s.send(m) }

// grpcPartCases are the part-wise cases only the wire can produce.
func grpcPartCases() []partCase {
	return []partCase{
		{"TamperedPart", testPartsTampered},
		{"Wire", testPartsWire},
	}
}

// testPartsTampered: a PutPart stream altered on its way (a chunk changed or lost, the
// header's digest or the finish digest changed, the finish lost) is refused by the plugin
// with ErrDigestMismatch or ErrSizeMismatch, and the part is absent afterwards; a header
// whose size is not the part's is refused with ErrSizeMismatch.
func testPartsTampered(t *testing.T, e *partEnv) {
	o := e.object("parts-tampered/object.bin", "parts-tampered", 3)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	n := min(1, o.spec.PartCount-1) // of two chunks or more: header, chunks, finish
	header := func(f func(*storagev1.PutPartHeader)) func(int, *storagev1.PutPartRequest) *storagev1.PutPartRequest {
		return func(_ int, m *storagev1.PutPartRequest) *storagev1.PutPartRequest {
			if hd := m.GetHeader(); hd != nil {
				c := &storagev1.PutPartHeader{Handle: hd.GetHandle(), PartNumber: hd.GetPartNumber(), Size: hd.GetSize(), Sha256: hd.GetSha256()}
				f(c)
				return &storagev1.PutPartRequest{Msg: &storagev1.PutPartRequest_Header{Header: c}}
			}
			return m
		}
	}
	for _, c := range []struct {
		what string
		want error
		f    func(i int, m *storagev1.PutPartRequest) *storagev1.PutPartRequest
	}{
		{"its second chunk changed", sdk.ErrDigestMismatch, func(i int, m *storagev1.PutPartRequest) *storagev1.PutPartRequest {
			if c := m.GetChunk(); i == 2 && len(c) > 0 {
				return &storagev1.PutPartRequest{Msg: &storagev1.PutPartRequest_Chunk{Chunk: flipFirstByte(c)}}
			}
			return m
		}},
		{"the header's SHA-256 changed", sdk.ErrDigestMismatch, header(func(h *storagev1.PutPartHeader) { h.Sha256 = flipFirstByte(h.Sha256) })},
		{"the finish SHA-256 changed", sdk.ErrDigestMismatch, func(_ int, m *storagev1.PutPartRequest) *storagev1.PutPartRequest {
			if f := m.GetFinish(); f != nil {
				return &storagev1.PutPartRequest{Msg: &storagev1.PutPartRequest_Finish{Finish: &storagev1.PutFinish{Sha256: flipFirstByte(f.GetSha256())}}}
			}
			return m
		}},
		{"its second chunk lost", sdk.ErrSizeMismatch, func(i int, m *storagev1.PutPartRequest) *storagev1.PutPartRequest {
			if i == 2 {
				return nil
			}
			return m
		}},
		{"the finish lost", sdk.ErrSizeMismatch, func(_ int, m *storagev1.PutPartRequest) *storagev1.PutPartRequest {
			if m.GetFinish() != nil {
				return nil
			}
			return m
		}},
	} {
		e.failPart(t, e.ctx, e.tampered(c.f), h, o, rs, o.info(n), bytes.NewReader(o.part(n)), c.want, c.what)
	}
	// A declared size that is not the object's may be refused before anything is touched:
	// the earlier receipt need not become stale, and the part is sent again in case it did.
	grow := header(func(h *storagev1.PutPartHeader) { h.Size++ })
	_, err := e.tampered(grow).PutPart(e.ctx, h, o.info(n), bytes.NewReader(o.part(n)))
	wantErr(t, fmt.Sprintf("PutPart(%q part %d) with the header's size one more", o.key, n), err, sdk.ErrSizeMismatch)
	e.checkUnfinished(t, o)
	rs[n] = e.putPart(t, h, o, n)
	e.commit(t, h, o, rs)
	e.checkClean(t)
}

// testPartsWire: the plugin side refuses malformed part-wise calls before the backend sees
// them: calls before Configure, invalid keys, empty or oversized handles and receipts,
// malformed headers and digests.
func testPartsWire(t *testing.T, e *partEnv) {
	ctx := e.ctx
	b := []byte("x")
	sum := sha256.Sum256(b)
	spec := sdk.ObjectSpec{Size: 1, PartSize: 1, PartCount: 1}

	bare := dial(t, e.st, nil, false).remote // the same backend, another connection
	_, err := bare.BeginObject(ctx, "parts-wire/x.bin", spec)
	wantErr(t, "BeginObject before Configure", err, sdk.ErrNotConfigured)
	_, err = bare.PutPart(ctx, []byte("handle"), partInfo(0, b), bytes.NewReader(b))
	wantErr(t, "PutPart before Configure", err, sdk.ErrNotConfigured)
	_, err = bare.CommitObject(ctx, []byte("handle"), [][]byte{[]byte("receipt")}, sum[:])
	wantErr(t, "CommitObject before Configure", err, sdk.ErrNotConfigured)
	wantErr(t, "AbortObject before Configure", bare.AbortObject(ctx, "parts-wire/x.bin", nil), sdk.ErrNotConfigured)

	for _, k := range []string{"../x", "/abs", "a//b", "", `a\b`, "a/b/"} {
		_, err := e.ps.BeginObject(ctx, k, spec)
		wantErr(t, fmt.Sprintf("BeginObject(%q)", k), err, sdk.ErrInvalidKey)
		wantErr(t, fmt.Sprintf("AbortObject(%q, nil)", k), e.ps.AbortObject(ctx, k, nil), sdk.ErrInvalidKey)
	}

	o := e.object("parts-wire/object.bin", "parts-wire", 2)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	huge := bytes.Repeat([]byte("h"), sdk.MaxHandleSize+1)
	for what, hd := range map[string][]byte{"an empty handle": nil, "an oversized handle": huge} {
		_, err := e.ps.PutPart(ctx, hd, o.info(0), bytes.NewReader(o.part(0)))
		wantErr(t, "PutPart with "+what, err, sdk.ErrNotFound)
		_, err = e.ps.CommitObject(ctx, hd, rs, o.sum)
		wantErr(t, "CommitObject with "+what, err, sdk.ErrNotFound)
	}
	wantErr(t, "AbortObject with an oversized handle", e.ps.AbortObject(ctx, o.key, huge), sdk.ErrNotFound)
	e.failCommit(t, h, o, withReceipt(rs, 0, bytes.Repeat([]byte("r"), sdk.MaxReceiptSize+1)), sdk.ErrStaleReceipt, "an oversized receipt")
	_, err = e.ps.CommitObject(ctx, h, rs, o.sum[:31])
	wantErr(t, "CommitObject with a SHA-256 of 31 bytes", err, sdk.ErrDigestMismatch)
	p := o.info(0)
	p.SHA256 = p.SHA256[:31]
	_, err = e.ps.PutPart(ctx, h, p, bytes.NewReader(o.part(0)))
	wantErr(t, "PutPart with a SHA-256 of 31 bytes", err, sdk.ErrSizeMismatch)

	// Streams a Remote never sends: a part number below 0, no header first.
	raw := e.wire.raw
	for what, first := range map[string]*storagev1.PutPartRequest{
		"part number -1": {Msg: &storagev1.PutPartRequest_Header{Header: &storagev1.PutPartHeader{Handle: h, PartNumber: -1, Size: 1, Sha256: sum[:]}}},
		"a chunk first":  {Msg: &storagev1.PutPartRequest_Chunk{Chunk: b}},
	} {
		stream, err := raw.PutPart(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(first); err != nil {
			t.Fatal(err)
		}
		_, err = stream.CloseAndRecv()
		if err == nil {
			t.Errorf("PutPart stream with %s succeeded, want an error", what)
		} else if err := sdk.FromStatus(err); !errors.Is(err, sdk.ErrSizeMismatch) && !errors.Is(err, sdk.ErrInvalidKey) {
			t.Errorf("PutPart stream with %s: %v, want a status of reason SIZE_MISMATCH or INVALID_KEY", what, err)
		}
	}
	e.abort(t, o, h)
	e.checkAborted(t, o)
}
