package storagetest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/tap"

	storagev1 "github.com/chunked-uploader/chunked-uploader/proto/storage/v1"
	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// RunGRPC runs the same cases through a real gRPC connection: the implementation is served
// by sdk.Plugin on a gRPC server over a Unix socket, as sdk.Serve does, and the cases talk
// to the pluginhost.Remote a host would use, after calling Configure, so every error comes back
// through the wire translation and must still match the sdk sentinels with errors.Is. It
// adds cases only the wire can produce: corrupted, truncated and unfinished Put streams,
// invalid keys, calls before Configure, and a connection made by go-plugin itself.
func RunGRPC(t *testing.T, o Options) {
	t.Helper()
	checkOptions(t, o)
	for _, c := range commonCases() {
		t.Run(c.name, func(t *testing.T) {
			w := dial(t, o.New(t), nil, true)
			c.run(t, &env{o: o, s: w.remote, settle: w.settle, ctx: t.Context()})
		})
	}
	for _, c := range grpcCases() {
		t.Run(c.name, func(t *testing.T) { c.run(t, &env{o: o, s: o.New(t), ctx: t.Context()}) })
	}
	runParts(t, o, func(t *testing.T, u func(string)) { grpcPartSupport(t, o, u) },
		func(t *testing.T, st sdk.Storage) *partEnv { return openGRPCParts(t, o, st) },
		append(partCases(), grpcPartCases()...))
}

// wire is one plugin connection.
type wire struct {
	remote pluginhost.Remote
	raw    storagev1.StorageServiceClient
	info   pluginhost.PluginInfo // what Configure answered, if called
	// staging is the staging directory offered at Configure (dialWith), or "".
	staging string
	stop    func() // ends the connection and the server, as the plugin's exit would
	// started counts the calls the server has seen the headers of, finished the calls
	// whose handler returned.
	started, finished atomic.Int64
}

// settleWait bounds how long settle waits for the plugin's handlers.
const settleWait = 30 * time.Second

// settle waits until the plugin has finished every call made so far. A client whose Put
// fails aborts the stream and returns at once, while the plugin may still be cleaning up;
// checks for leftovers must wait for it. The server counts a call as started when its
// headers arrive, in the order they arrive on the connection, so once the barrier call
// below returns every earlier call has been counted.
func (w *wire) settle(t *testing.T) {
	t.Helper()
	_, _ = w.raw.Stat(t.Context(), &storagev1.StatRequest{Key: ""}) // refused before the backend
	deadline := time.Now().Add(settleWait)
	for w.finished.Load() < w.started.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin is still handling %d call(s) after %v", w.started.Load()-w.finished.Load(), settleWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// dial serves st with sdk.Plugin over a real gRPC connection on a Unix socket and returns
// the connection, configured unless configure is false. tamper, if set, wraps the client's
// Put streams.
func dial(t *testing.T, st sdk.Storage, tamper func(storagev1.StorageService_PutClient) storagev1.StorageService_PutClient, configure bool) *wire {
	t.Helper()
	return dialWith(t, st, tamper, configure, false)
}

// dialWith is dial; with staged, the plugin does staged reads (sdk.WithStagedReads) and,
// if configure, is configured with a staging directory of its own (wire.staging).
func dialWith(t *testing.T, st sdk.Storage, tamper func(storagev1.StorageService_PutClient) storagev1.StorageService_PutClient, configure, staged bool) *wire {
	t.Helper()
	// t.TempDir can exceed the ~100-byte limit of socket paths; MkdirTemp stays short.
	dir, err := os.MkdirTemp("", "storagetest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "plugin.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire{}
	// The interceptors see every call the suite makes: none is cancelled before its
	// request message arrives, the only way a call skips them.
	srv := plugin.DefaultGRPCServer([]grpc.ServerOption{
		grpc.InTapHandle(func(ctx context.Context, _ *tap.Info) (context.Context, error) {
			w.started.Add(1)
			return ctx, nil
		}),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			defer w.finished.Add(1)
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			defer w.finished.Add(1)
			return h(srv, ss)
		}),
	})
	factory := func(context.Context, sdk.Config, sdk.Logger) (sdk.Storage, error) { return st, nil }
	p := &pluginhost.Plugin{Plugin: sdk.Plugin{Name: "storagetest", Factory: factory, StagedReads: staged}}
	if err := p.GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	w.stop = func() {
		conn.Close()
		srv.Stop()
	}
	t.Cleanup(w.stop)
	w.raw = storagev1.NewStorageServiceClient(conn)
	if tamper != nil {
		w.remote = pluginhost.NewRemote(&tamperClient{StorageServiceClient: w.raw, tamper: tamper})
	} else {
		raw, err := p.GRPCClient(t.Context(), nil, conn) // what dispensing gives a host
		if err != nil {
			t.Fatal(err)
		}
		w.remote = raw.(pluginhost.Remote)
	}
	switch {
	case configure && staged:
		w.staging = filepath.Join(dir, "staging")
		if err := os.Mkdir(w.staging, 0o700); err != nil {
			t.Fatal(err)
		}
		// A probe left by a host that crashed during Configure is removed, and Configure
		// leaves none behind.
		stale := filepath.Join(w.staging, ".plugin-probe-stale")
		if err := os.WriteFile(stale, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		info, err := w.remote.ConfigureWithStaging(t.Context(), sdk.Config{"STORAGETEST": "1"}, w.staging)
		if err != nil {
			t.Fatalf("ConfigureWithStaging: %v", err)
		}
		if left, _ := os.ReadDir(w.staging); len(left) != 0 {
			t.Fatalf("ConfigureWithStaging left %d file(s) in the staging directory, the first %s", len(left), left[0].Name())
		}
		w.info = info
	case configure:
		w.info = configureRemote(t, w.remote)
	}
	return w
}

func configureRemote(t *testing.T, r pluginhost.Remote) pluginhost.PluginInfo {
	t.Helper()
	info, err := r.Configure(t.Context(), sdk.Config{"STORAGETEST": "1"})
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if info.Name != "storagetest" {
		t.Errorf("Configure returned name %q, want %q", info.Name, "storagetest")
	}
	return info
}

// tamperClient is a StorageServiceClient whose Put streams pass through tamper and whose
// PutPart streams pass through part (either may be nil: no tampering).
type tamperClient struct {
	storagev1.StorageServiceClient
	tamper func(storagev1.StorageService_PutClient) storagev1.StorageService_PutClient
	part   func(storagev1.StorageService_PutPartClient) storagev1.StorageService_PutPartClient
}

func (c *tamperClient) Put(ctx context.Context, opts ...grpc.CallOption) (storagev1.StorageService_PutClient, error) {
	s, err := c.StorageServiceClient.Put(ctx, opts...)
	if err != nil || c.tamper == nil {
		return s, err
	}
	return c.tamper(s), nil
}

func (c *tamperClient) PutPart(ctx context.Context, opts ...grpc.CallOption) (storagev1.StorageService_PutPartClient, error) {
	s, err := c.StorageServiceClient.PutPart(ctx, opts...)
	if err != nil || c.part == nil {
		return s, err
	}
	return c.part(s), nil
}

// sendFunc is a Put stream whose Send is replaced.
type sendFunc struct {
	storagev1.StorageService_PutClient
	send func(m *storagev1.PutRequest) error
}

func (s *sendFunc) Send(m *storagev1.PutRequest) error { return s.send(m) }

// tamperSend returns a tamper function that lets f rewrite each message (nil drops it).
func tamperSend(f func(i int, m *storagev1.PutRequest) *storagev1.PutRequest) func(storagev1.StorageService_PutClient) storagev1.StorageService_PutClient {
	return func(s storagev1.StorageService_PutClient) storagev1.StorageService_PutClient {
		i := 0
		return &sendFunc{StorageService_PutClient: s, send: func(m *storagev1.PutRequest) error {
			m = f(i, m)
			i++
			if m == nil {
				return nil
			}
			return s.Send(m)
		}}
	}
}

func flipFirstByte(b []byte) []byte {
	c := bytes.Clone(b)
	c[0] ^= 0x80
	return c
}

func grpcCases() []testCase {
	tampered := func(name string, want error, f func(i int, m *storagev1.PutRequest) *storagev1.PutRequest) testCase {
		return testCase{name, func(t *testing.T, e *env) {
			w := dial(t, e.s, tamperSend(f), true)
			e.s, e.settle = w.remote, w.settle
			key := "tampered/object.bin"
			b := data(key, 2<<20+100) // header, three chunks, finish
			e.failPut(t, e.ctx, key, bytes.NewReader(b), int64(len(b)), want)
		}}
	}
	return []testCase{
		tampered("WrongDigest", sdk.ErrDigestMismatch, func(_ int, m *storagev1.PutRequest) *storagev1.PutRequest {
			if f := m.GetFinish(); f != nil {
				return &storagev1.PutRequest{Msg: &storagev1.PutRequest_Finish{Finish: &storagev1.PutFinish{Sha256: flipFirstByte(f.GetSha256())}}}
			}
			return m
		}),
		tampered("CorruptChunk", sdk.ErrDigestMismatch, func(i int, m *storagev1.PutRequest) *storagev1.PutRequest {
			if c := m.GetChunk(); i == 2 && len(c) > 0 {
				return &storagev1.PutRequest{Msg: &storagev1.PutRequest_Chunk{Chunk: flipFirstByte(c)}}
			}
			return m
		}),
		tampered("LostChunk", sdk.ErrSizeMismatch, func(i int, m *storagev1.PutRequest) *storagev1.PutRequest {
			if i == 2 {
				return nil
			}
			return m
		}),
		tampered("MissingFinish", sdk.ErrSizeMismatch, func(_ int, m *storagev1.PutRequest) *storagev1.PutRequest {
			if m.GetFinish() != nil {
				return nil
			}
			return m
		}),
		{"InvalidKey", testInvalidKey},
		{"GoPlugin", testGoPlugin},
		{"NotConfigured", testNotConfigured},
	}
}

// testInvalidKey: the plugin side refuses keys ValidKey refuses, before the backend sees them.
func testInvalidKey(t *testing.T, e *env) {
	w := dial(t, e.s, nil, true)
	e.s, e.settle = w.remote, w.settle
	for _, k := range []string{"../x", "/abs", "a//b", "a/../b", "", `a\b`, "a/b/"} {
		if _, err := e.s.Put(e.ctx, k, bytes.NewReader([]byte("x")), 1); !errors.Is(err, sdk.ErrInvalidKey) {
			t.Errorf("Put(%q): got %v, want an error wrapping sdk.ErrInvalidKey", k, err)
		}
		if _, err := e.s.Stat(e.ctx, k); !errors.Is(err, sdk.ErrInvalidKey) {
			t.Errorf("Stat(%q): got %v, want an error wrapping sdk.ErrInvalidKey", k, err)
		}
		if err := e.s.Delete(e.ctx, k); !errors.Is(err, sdk.ErrInvalidKey) {
			t.Errorf("Delete(%q): got %v, want an error wrapping sdk.ErrInvalidKey", k, err)
		}
	}
	e.checkList(t, nil, nil)
}

// testNotConfigured: every call before Configure fails with ErrNotConfigured.
func testNotConfigured(t *testing.T, e *env) {
	w := dial(t, e.s, nil, false)
	r := w.remote
	e.settle = w.settle
	if _, err := r.Put(e.ctx, "notconfigured/x.bin", bytes.NewReader([]byte("x")), 1); !errors.Is(err, sdk.ErrNotConfigured) {
		t.Errorf("Put: got %v, want an error wrapping sdk.ErrNotConfigured", err)
	}
	if _, err := r.Stat(e.ctx, "notconfigured/x.bin"); !errors.Is(err, sdk.ErrNotConfigured) {
		t.Errorf("Stat: got %v, want an error wrapping sdk.ErrNotConfigured", err)
	}
	if err := r.Delete(e.ctx, "notconfigured/x.bin"); !errors.Is(err, sdk.ErrNotConfigured) {
		t.Errorf("Delete: got %v, want an error wrapping sdk.ErrNotConfigured", err)
	}
	if err := r.Health(e.ctx); !errors.Is(err, sdk.ErrNotConfigured) {
		t.Errorf("Health: got %v, want an error wrapping sdk.ErrNotConfigured", err)
	}
	e.checkList(t, nil, nil)
}

// testGoPlugin: go-plugin's own client and server (plugin.TestPluginGRPCConn) dispense an
// pluginhost.Remote that works.
func testGoPlugin(t *testing.T, e *env) {
	ps := map[string]plugin.Plugin{sdk.PluginName: &pluginhost.Plugin{Plugin: sdk.Plugin{
		Name:    "storagetest",
		Factory: func(context.Context, sdk.Config, sdk.Logger) (sdk.Storage, error) { return e.s, nil },
	}}}
	client, server := plugin.TestPluginGRPCConn(t, false, ps)
	t.Cleanup(func() {
		// Stop the server first: client.Close asks a live server to stop itself, and a
		// second, concurrent Stop races inside go-plugin.
		server.Stop()
		client.Close()
	})
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	r, ok := raw.(pluginhost.Remote)
	if !ok {
		t.Fatalf("Dispense returned %T, not an pluginhost.Remote", raw)
	}
	configureRemote(t, r)
	e.s = r
	const key = "goplugin/object.bin"
	b := data(key, 1<<20+1)
	e.put(t, key, bytes.NewReader(b), b)
	e.checkStored(t, key, b)
	if err := r.Health(e.ctx); err != nil {
		t.Errorf("Health: %v", err)
	}
}
