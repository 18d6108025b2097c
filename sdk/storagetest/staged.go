package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// RunStaged runs the part-wise cases over a gRPC connection with staged reads on, for a
// plugin served with sdk.WithStagedReads: the connection is configured with a staging
// directory (pluginhost.Remote.ConfigureWithStaging), every part the cases send is first
// written to a file there, as the host stages it, and the plugin is given that file to read
// instead of the bytes. It adds the cases only staged reads have: a file whose bytes do not
// have the CRC-32C sent, of another size, outside the staging directory, behind a symbolic
// link, or sent to a connection that was offered no staging directory, each of which the
// plugin must refuse with DATA_LOSS, keeping nothing of the part.
func RunStaged(t *testing.T, o Options) {
	t.Helper()
	checkOptions(t, o)
	runParts(t, o, func(t *testing.T, u func(string)) { grpcPartSupport(t, o, u) },
		func(t *testing.T, st sdk.Storage) *partEnv { return openStagedParts(t, o, st) },
		append(partCases(), stagedPartCases()...))
}

// openStagedParts returns the env of a case run over a plugin connection with staged reads.
func openStagedParts(t *testing.T, o Options, st sdk.Storage) *partEnv {
	t.Helper()
	return openWireParts(t, o, st, true, func(t *testing.T, w *wire) pluginhost.Remote {
		if !w.info.StagedReads {
			t.Fatal("ConfigureWithStaging: the plugin did not read the staging probe back (PluginInfo.StagedReads is false)")
		}
		return &stagingRemote{Remote: w.remote, dir: w.staging}
	})
}

// stagingRemote is a Remote whose PutPart stages the part in dir first, as the host does:
// it writes exactly the part's bytes to a file, refusing what the host's staging refuses
// (a short or long reader, bytes that do not hash to the part's SHA-256), and then names
// the file to the plugin with its CRC-32C.
type stagingRemote struct {
	pluginhost.Remote
	dir string
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (s *stagingRemote) PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, r io.Reader) ([]byte, error) {
	path, crc, err := stageFile(s.dir, p, r)
	if err != nil {
		// Bytes the host's staging would refuse never become a staged file: send what was
		// read and the error as a stream, as a host without staged reads would, so that the
		// plugin sees the failed attempt.
		rest := io.Reader(bytes.NewReader(path.read))
		if err != io.ErrUnexpectedEOF {
			rest = io.MultiReader(rest, iotest.ErrReader(err))
		}
		return s.Remote.PutPart(ctx, handle, p, rest)
	}
	defer os.Remove(path.name)
	return s.Remote.PutPart(ctx, handle, p, stagedPart(path.name, crc))
}

// staged is a staged part file, and the bytes read for it when staging it failed.
type staged struct {
	name string
	read []byte
}

// stageFile writes the p.Size bytes of r to a new file in dir and returns it and its
// CRC-32C. When r does not hold exactly p's bytes it fails, leaving no file, and returns
// the bytes it read.
func stageFile(dir string, p sdk.PartInfo, r io.Reader) (staged, uint32, error) {
	f, err := os.CreateTemp(dir, fmt.Sprintf("%06d.*.part", p.Number))
	if err != nil {
		return staged{}, 0, err
	}
	crc, sha := crc32.New(castagnoli), sha256.New()
	n, err := io.Copy(io.MultiWriter(f, crc, sha), io.LimitReader(r, p.Size))
	switch {
	case err != nil:
	case n < p.Size:
		err = io.ErrUnexpectedEOF
	default:
		if err = sdk.ExpectEOF(r); err == nil && !bytes.Equal(sha.Sum(nil), p.SHA256) {
			err = fmt.Errorf("%w: the staged bytes are not part %d's", sdk.ErrDigestMismatch, p.Number)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		read, _ := os.ReadFile(f.Name())
		os.Remove(f.Name())
		return staged{read: read}, 0, err
	}
	return staged{name: f.Name()}, crc.Sum32(), nil
}

// stagedPart is the StagedPart of a staged file. Its Reader is what a plugin that does
// not read staged files would be sent: nothing, so that such a plugin fails the part.
func stagedPart(path string, crc uint32) *pluginhost.StagedPart {
	return &pluginhost.StagedPart{Reader: bytes.NewReader(nil), Path: path, CRC32C: crc}
}

// stagedPartCases are the part-wise cases only staged reads have.
func stagedPartCases() []partCase {
	return []partCase{
		{"StagedRefused", testStagedRefused},
		{"StagedNotOffered", testStagedNotOffered},
		{"StagedOutsideSent", testStagedOutsideSent},
		{"StagedRefusedSent", testStagedRefusedSent},
	}
}

// testStagedRefusedSent: when the plugin refuses a staged file that pluginhost named (here
// it holds other bytes than the part, under the part's CRC-32C), the same PutPart sends the
// bytes of the StagedPart's Reader instead; the commit's digest shows which were taken.
func testStagedRefusedSent(t *testing.T, e *partEnv) {
	o := e.object("parts-staged-fallback/object.bin", "parts-staged-fallback", 2)
	h := e.begin(t, o)
	rs := make([][]byte, o.spec.PartCount)
	for n := range o.spec.PartCount {
		path := filepath.Join(e.wire.staging, fmt.Sprintf("fallback-%d.part", n))
		if err := os.WriteFile(path, flipFirstByte(o.part(n)), 0o600); err != nil {
			t.Fatal(err)
		}
		sp := &pluginhost.StagedPart{Reader: bytes.NewReader(o.part(n)), Path: path, CRC32C: crc32.Checksum(o.part(n), castagnoli)}
		r, err := e.wire.remote.PutPart(e.ctx, h, o.info(n), sp)
		if err != nil {
			t.Fatalf("PutPart of part %d whose staged file the plugin refuses: %v", n, err)
		}
		rs[n] = r
	}
	e.commit(t, h, o, rs)
}

// testStagedOutsideSent: pluginhost names to the plugin only files under the staging
// directory it offered; a StagedPart elsewhere is sent as bytes from its Reader. The file
// outside holds other bytes, so a part taken from it would fail the commit's digest.
func testStagedOutsideSent(t *testing.T, e *partEnv) {
	o := e.object("parts-staged-outside/object.bin", "parts-staged-outside", 2)
	h := e.begin(t, o)
	rs := make([][]byte, o.spec.PartCount)
	for n := range o.spec.PartCount {
		path := filepath.Join(t.TempDir(), "elsewhere.part")
		if err := os.WriteFile(path, flipFirstByte(o.part(n)), 0o600); err != nil {
			t.Fatal(err)
		}
		sp := &pluginhost.StagedPart{Reader: bytes.NewReader(o.part(n)), Path: path, CRC32C: crc32.Checksum(flipFirstByte(o.part(n)), castagnoli)}
		r, err := e.wire.remote.PutPart(e.ctx, h, o.info(n), sp)
		if err != nil {
			t.Fatalf("PutPart of part %d named outside the staging directory: %v", n, err)
		}
		rs[n] = r
	}
	e.commit(t, h, o, rs)
}

// testStagedRefused: a staged file that is not the part (another CRC-32C, a byte short, a
// byte long, outside the staging directory, a symbolic link to the part) is refused with
// DATA_LOSS, and the part is absent afterwards.
func testStagedRefused(t *testing.T, e *partEnv) {
	o := e.object("parts-staged/object.bin", "parts-staged", 3)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	n := min(1, o.spec.PartCount-1)
	dir := e.wire.staging
	outside := t.TempDir()
	write := func(dir, name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	part := o.part(n)
	crc := crc32.Checksum(part, castagnoli)
	link := filepath.Join(dir, "link.part")
	if err := os.Symlink(write(outside, "target.part", part), link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		path string
		crc  uint32
		want error
	}{
		{"another CRC-32C", write(dir, "crc.part", part), crc ^ 1, sdk.ErrDigestMismatch},
		{"a byte changed", write(dir, "changed.part", flipFirstByte(part)), crc, sdk.ErrDigestMismatch},
		{"a byte short", write(dir, "short.part", part[:len(part)-1]), crc, sdk.ErrDigestMismatch},
		{"a byte more", write(dir, "long.part", append(bytes.Clone(part), 0)), crc, sdk.ErrDigestMismatch},
		{"a file outside the staging directory", filepath.Join(outside, "target.part"), crc, sdk.ErrDigestMismatch},
		{"a path that is not clean", dir + string(filepath.Separator) + "." + string(filepath.Separator) + "crc.part", crc, sdk.ErrDigestMismatch},
		{"a symbolic link to the part", link, crc, sdk.ErrDigestMismatch},
		{"a missing file", filepath.Join(dir, "missing.part"), crc, sdk.ErrDigestMismatch},
	} {
		ps := &rawStaged{w: e.wire, path: c.path, crc: c.crc}
		e.failPart(t, e.ctx, ps, h, o, rs, o.info(n), nil, c.want, "its staged file "+c.what)
	}
	e.commit(t, h, o, rs)
}

// testStagedNotOffered: a connection configured without a staging directory (Configure,
// not ConfigureWithStaging) takes no staged file, even one the plugin could read.
func testStagedNotOffered(t *testing.T, e *partEnv) {
	plain := dialWith(t, e.st, nil, false, true)
	if info := configureRemote(t, plain.remote); info.StagedReads {
		t.Fatalf("Configure without a staging directory answered %+v; want no staged reads", info)
	}
	o := e.object("parts-staged-off/object.bin", "parts-staged-off", 2)
	h := e.begin(t, o)
	rs := e.putParts(t, h, o)
	path := filepath.Join(e.wire.staging, "part.part")
	if err := os.WriteFile(path, o.part(0), 0o600); err != nil {
		t.Fatal(err)
	}
	ps := &rawStaged{w: plain, path: path, crc: crc32.Checksum(o.part(0), castagnoli)}
	e.failPart(t, e.ctx, ps, h, o, rs, o.info(0), nil, sdk.ErrDigestMismatch, "a staged file on a connection offered none")
	e.commit(t, h, o, rs)
}

// rawStaged sends PutPart streams that name path as the staged part, with crc, whatever
// the host side would check: only the plugin's checks stand between them and the part.
type rawStaged struct {
	w    *wire
	path string
	crc  uint32
}

func (r *rawStaged) PartLimits() sdk.PartLimits { return r.w.remote.PartLimits() }

func (r *rawStaged) BeginObject(ctx context.Context, key string, spec sdk.ObjectSpec) ([]byte, error) {
	return r.w.remote.BeginObject(ctx, key, spec)
}

func (r *rawStaged) PutPart(ctx context.Context, handle []byte, p sdk.PartInfo, _ io.Reader) ([]byte, error) {
	stream, err := r.w.raw.PutPart(ctx)
	if err != nil {
		return nil, sdk.FromStatus(err)
	}
	hdr := &storagev1.PutPartHeader{Handle: handle, PartNumber: int64(p.Number), Size: p.Size, Sha256: p.SHA256,
		StagedPath: r.path, StagedCrc32C: r.crc}
	if err := stream.Send(&storagev1.PutPartRequest{Msg: &storagev1.PutPartRequest_Header{Header: hdr}}); err != nil {
		return nil, sdk.FromStatus(err)
	}
	fin := &storagev1.PutPartRequest{Msg: &storagev1.PutPartRequest_Finish{Finish: &storagev1.PutFinish{Sha256: p.SHA256}}}
	if err := stream.Send(fin); err != nil {
		return nil, sdk.FromStatus(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, sdk.FromStatus(err)
	}
	return resp.GetReceipt(), nil
}

func (r *rawStaged) CommitObject(ctx context.Context, handle []byte, receipts [][]byte, sum []byte) (sdk.Object, error) {
	return r.w.remote.CommitObject(ctx, handle, receipts, sum)
}

func (r *rawStaged) AbortObject(ctx context.Context, key string, handle []byte) error {
	return r.w.remote.AbortObject(ctx, key, handle)
}
