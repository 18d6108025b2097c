package pluginhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"
	"github.com/chunked-uploader/chunked-uploader/sdk"
)

// Remote is the host's view of a plugin: a Storage plus the calls only the host makes.
// It is what dispensing sdk.PluginName from a go-plugin client made with PluginSet
// returns. Every error wraps the sentinel of sdk the plugin's error wrapped (see
// sdk.FromStatus).
type Remote interface {
	sdk.Storage
	sdk.HealthChecker
	// Configure sends the backend's settings; it must succeed before any other call.
	// It returns what the plugin said of itself.
	Configure(ctx context.Context, cfg sdk.Config) (PluginInfo, error)
	// ConfigureWithStaging is Configure that also offers the plugin staged reads of the
	// part files under stagingDir (see sdk.WithStagedReads and StagedPart): it writes a
	// probe file of random bytes there, and PluginInfo.StagedReads tells whether the plugin
	// read them back. The probe is removed again before it returns.
	ConfigureWithStaging(ctx context.Context, cfg sdk.Config, stagingDir string) (PluginInfo, error)
	// Validate asks the plugin to check cfg without using it (see sdk.WithValidator).
	Validate(ctx context.Context, cfg sdk.Config) error
	// PutChecked is Put that also refuses to let the object become visible unless the
	// content's SHA-256 equals want (when want is not nil): on a mismatch the finish message
	// is never sent, the plugin discards what it received, and the error wraps
	// sdk.ErrDigestMismatch.
	PutChecked(ctx context.Context, key string, r io.Reader, size int64, want []byte) (sdk.Object, error)
	// PartStorage is served by plugins whose PluginInfo.Parts is set; others answer every
	// call with an error wrapping sdk.ErrNotSupported. PutPart reads exactly p.Size bytes from r
	// and fails with sdk.ErrDigestMismatch, sending nothing the plugin could keep, when they do
	// not hash to p.SHA256.
	sdk.PartStorage
	// OpenPartFile opens the data file of the unfinished object of handle, for the host to
	// write parts into it itself or read them back (sdk.PartFiles; only for plugins whose
	// PluginInfo.PartFiles is set), with flag os.O_RDONLY or os.O_WRONLY. It never creates
	// a file, nor opens one whose name is a symbolic link (links in the directories above
	// it are the plugin's own choice of path). It fails with an error wrapping
	// sdk.ErrNotFound when the file is gone or a symbolic or hard link was put in its
	// place (the object is lost), and with one wrapping sdk.ErrNotSupported when the plugin has no part files or
	// the file the host opened is not the one the plugin named (another mount namespace, a
	// file replaced meanwhile); other errors (too many open files) say nothing of the file.
	OpenPartFile(ctx context.Context, handle []byte, flag int) (*os.File, error)
	// RecordPart records a part that the host wrote into the part file and made durable,
	// and returns its receipt (sdk.PartFiles.RecordPart).
	RecordPart(ctx context.Context, handle []byte, p sdk.PartInfo) ([]byte, error)
}

// Plugin is the go-plugin glue of the host side: dispensing it gives a Remote. Its
// embedded sdk.Plugin serves, so that one Plugin value does both ends of an in-process
// test connection (plugin.TestPluginGRPCConn); a host leaves it zero.
type Plugin struct {
	sdk.Plugin
}

var _ plugin.GRPCPlugin = (*Plugin)(nil)

// GRPCClient implements plugin.GRPCPlugin.
func (p *Plugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return NewRemote(storagev1.NewStorageServiceClient(c)), nil
}

// PluginSet is the plugin map for a host's plugin.ClientConfig.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{sdk.PluginName: &Plugin{}}
}

// grpcClient implements Remote over a StorageService connection.
type grpcClient struct {
	client storagev1.StorageServiceClient

	mu     sync.Mutex
	parts  sdk.PartLimits // from the last Configure
	staged string         // the staging directory the plugin reads parts from; "" if none
	files  bool           // the plugin has part files (sdk.PartFiles)
}

var _ Remote = (*grpcClient)(nil)

// NewRemote returns a Remote speaking to a StorageService client. Hosts normally get one
// by dispensing PluginName; this is for tests and for embedding.
func NewRemote(c storagev1.StorageServiceClient) Remote { return &grpcClient{client: c} }

// PluginInfo is what a plugin says of itself when configured.
type PluginInfo struct {
	Name string // the name it serves under
	// Parts is set when the backend stores objects part-wise (PartStorage).
	Parts *sdk.PartLimits
	// StagedReads: the plugin reads staged parts itself (ConfigureWithStaging).
	StagedReads bool
	// PartFiles: the host may write parts into the plugin's part files itself
	// (sdk.PartFiles, Remote.OpenPartFile).
	PartFiles bool
}

func (c *grpcClient) Configure(ctx context.Context, cfg sdk.Config) (PluginInfo, error) {
	return c.configure(ctx, cfg, "", nil)
}

func (c *grpcClient) ConfigureWithStaging(ctx context.Context, cfg sdk.Config, stagingDir string) (PluginInfo, error) {
	probe, content, err := writeProbe(stagingDir)
	if err != nil {
		return PluginInfo{}, err
	}
	defer os.Remove(probe)
	return c.configure(ctx, cfg, probe, content)
}

// probePattern names the probe files in the staging directory.
const probePattern = ".plugin-probe-*"

// writeProbe writes a file of random bytes in dir for the plugin to read back. It first
// removes the probes a host that crashed during a Configure left (one host configures one
// plugin at a time per staging directory).
func writeProbe(dir string) (path string, content []byte, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("staging probe: %w", err)
	}
	if stale, _ := filepath.Glob(filepath.Join(dir, probePattern)); len(stale) > 0 {
		for _, p := range stale {
			os.Remove(p)
		}
	}
	content = make([]byte, 32)
	if _, err := rand.Read(content); err != nil {
		return "", nil, fmt.Errorf("staging probe: %w", err)
	}
	f, err := os.CreateTemp(dir, probePattern)
	if err != nil {
		return "", nil, fmt.Errorf("staging probe: %w", err)
	}
	_, err = f.Write(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", nil, fmt.Errorf("staging probe: %w", err)
	}
	return f.Name(), content, nil
}

func (c *grpcClient) configure(ctx context.Context, cfg sdk.Config, probe string, content []byte) (PluginInfo, error) {
	resp, err := c.client.Configure(ctx, &storagev1.ConfigureRequest{Settings: cfg, StagingProbe: probe})
	if err != nil {
		return PluginInfo{}, fmt.Errorf("configure: %w", sdk.FromStatus(err))
	}
	info := PluginInfo{Name: resp.GetName()}
	info.StagedReads = probe != "" && bytes.Equal(resp.GetStagingProbe(), content)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.staged = ""
	if info.StagedReads {
		c.staged = filepath.Dir(probe)
	}
	if p := resp.GetParts(); p != nil {
		info.Parts = &sdk.PartLimits{MinPartSize: p.GetMinPartSize(), MaxParts: p.GetMaxParts()}
		c.parts = *info.Parts
		info.PartFiles = p.GetPartFiles()
	}
	c.files = info.PartFiles
	return info, nil
}

func (c *grpcClient) Validate(ctx context.Context, cfg sdk.Config) error {
	if _, err := c.client.Configure(ctx, &storagev1.ConfigureRequest{Settings: cfg, ValidateOnly: true}); err != nil {
		return fmt.Errorf("validate settings: %w", sdk.FromStatus(err))
	}
	return nil
}

// Put streams r to the plugin in chunks of at most sdk.CopyBufferSize bytes, followed by the
// SHA-256 of what was sent. It reads exactly size bytes from r and fails with
// sdk.ErrSizeMismatch if r is shorter or longer; the plugin commits only if it received the
// same bytes.
func (c *grpcClient) Put(ctx context.Context, key string, r io.Reader, size int64) (sdk.Object, error) {
	return c.PutChecked(ctx, key, r, size, nil)
}

// PutChecked implements Remote.
func (c *grpcClient) PutChecked(ctx context.Context, key string, r io.Reader, size int64, want []byte) (sdk.Object, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the stream on every early return
	stream, err := c.client.Put(ctx)
	if err != nil {
		return sdk.Object{}, fmt.Errorf("put %s: %w", key, sdk.FromStatus(err))
	}
	hdr := &storagev1.PutRequest{Msg: &storagev1.PutRequest_Header{Header: &storagev1.PutHeader{Key: key, Size: size}}}
	if err := stream.Send(hdr); err != nil {
		return sdk.Object{}, c.putError(key, stream, err)
	}
	msg := &storagev1.PutRequest_Chunk{}
	req := &storagev1.PutRequest{Msg: msg}
	sum, err := sendChunks(func(b []byte) error { msg.Chunk = b; return stream.Send(req) }, r, size, sha256.New())
	if err != nil {
		var se *sendError
		if errors.As(err, &se) {
			return sdk.Object{}, c.putError(key, stream, se.err)
		}
		abandon(stream)
		return sdk.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	if want != nil && !bytes.Equal(sum, want) {
		abandon(stream)
		return sdk.Object{}, fmt.Errorf("put %s: %w: content has sha256 %x, expected %x", key, sdk.ErrDigestMismatch, sum, want)
	}
	// gRPC notices a cancelled ctx asynchronously, so chunks and the finish message may still
	// go out after it. Without a finish the plugin never commits: check before sending it.
	if err := ctx.Err(); err != nil {
		return sdk.Object{}, fmt.Errorf("put %s: %w", key, err)
	}
	fin := &storagev1.PutRequest{Msg: &storagev1.PutRequest_Finish{Finish: &storagev1.PutFinish{Sha256: sum}}}
	if err := stream.Send(fin); err != nil {
		return sdk.Object{}, c.putError(key, stream, err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return sdk.Object{}, fmt.Errorf("put %s: %w", key, sdk.FromStatus(err))
	}
	obj := objectFromProto(resp.GetObject())
	if obj.Size != size || (obj.SHA256 != nil && !bytes.Equal(obj.SHA256, sum)) {
		return sdk.Object{}, fmt.Errorf("put %s: %w: plugin reports %d bytes sha256 %x, sent %d bytes sha256 %x",
			key, sdk.ErrDigestMismatch, obj.Size, obj.SHA256, size, sum)
	}
	obj.SHA256 = sum
	return obj, nil
}

// abandon ends a Put stream without a finish message, so the plugin discards what it
// received, and waits for the plugin to answer: once Put returns, nothing of it is left
// on the backend, temporaries included. The wait ends with the call's context.
func abandon(stream storagev1.StorageService_PutClient) {
	_, _ = stream.CloseAndRecv()
}

// putError turns a Send failure into the plugin's real error: when the server ends the
// stream early, Send returns io.EOF and the status comes from CloseAndRecv.
func (c *grpcClient) putError(key string, stream storagev1.StorageService_PutClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.CloseAndRecv(); rerr != nil {
			err = rerr
		}
	}
	return fmt.Errorf("put %s: %w", key, sdk.FromStatus(err))
}

// sendBuffers holds the buffers of sendChunks: a host sends many parts one after another,
// and a fresh MiB for each would be garbage the collector lets pile up.
var sendBuffers = sync.Pool{New: func() any { b := make([]byte, sdk.CopyBufferSize); return &b }}

// sendError marks a failure to send, as opposed to a failure to read the content.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }

// sendChunks reads exactly size bytes from r and sends them as chunk messages of at most
// sdk.CopyBufferSize bytes, returning their digest by h (nil: no digest, and none is
// computed); r must end there (else sdk.ErrSizeMismatch).
//
// One buffer is reused for every message. grpc-go's Send encodes the message (copying the
// bytes) before it returns; only stats handlers and tracing may read a message later, and
// the connections this package makes have none. A fresh buffer per message would leave a
// MiB of garbage per MiB delivered and let the host's heap grow to twice its size.
func sendChunks(send func([]byte) error, r io.Reader, size int64, h hash.Hash) ([]byte, error) {
	bp := sendBuffers.Get().(*[]byte)
	defer sendBuffers.Put(bp)
	buf := (*bp)[:min(size, sdk.CopyBufferSize)]
	var sent int64
	for sent < size {
		chunk := buf[:min(size-sent, sdk.CopyBufferSize)]
		n, err := io.ReadFull(r, chunk)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("%w: got %d bytes, expected %d", sdk.ErrSizeMismatch, sent+int64(n), size)
		}
		if err != nil {
			return nil, fmt.Errorf("read after %d bytes: %w", sent+int64(n), err)
		}
		if h != nil {
			h.Write(chunk)
		}
		if err := send(chunk); err != nil {
			return nil, &sendError{err}
		}
		sent += int64(n)
	}
	if err := sdk.ExpectEOF(r); err != nil {
		return nil, fmt.Errorf("read after %d bytes: %w", sent, err)
	}
	if h == nil {
		return nil, nil
	}
	return h.Sum(nil), nil
}

func (c *grpcClient) Stat(ctx context.Context, key string) (sdk.Object, error) {
	resp, err := c.client.Stat(ctx, &storagev1.StatRequest{Key: key})
	if err != nil {
		return sdk.Object{}, fmt.Errorf("stat %s: %w", key, sdk.FromStatus(err))
	}
	return objectFromProto(resp.GetObject()), nil
}

func (c *grpcClient) Delete(ctx context.Context, key string) error {
	if _, err := c.client.Delete(ctx, &storagev1.DeleteRequest{Key: key}); err != nil {
		return fmt.Errorf("delete %s: %w", key, sdk.FromStatus(err))
	}
	return nil
}

func (c *grpcClient) Health(ctx context.Context) error {
	if _, err := c.client.Health(ctx, &storagev1.HealthRequest{}); err != nil {
		return sdk.FromStatus(err)
	}
	return nil
}

func objectFromProto(o *storagev1.Object) sdk.Object {
	if o == nil {
		return sdk.Object{}
	}
	return sdk.Object{Key: o.GetKey(), Size: o.GetSize(), SHA256: o.GetSha256(), Location: o.GetLocation()}
}
