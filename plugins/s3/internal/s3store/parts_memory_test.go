package s3store

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/chunked-uploader/chunked-uploader/sdk"
	"github.com/chunked-uploader/chunked-uploader/sdk/pluginhost"
)

// Memory of the plugin process while it stores parts, on top of the 64 MiB a plugin is
// allowed (sdk.DefaultMemoryLimit of heap plus the binary's pages) and the Put buffers it
// reserves. PutPart holds no buffer of a part's size: per part in flight, the HTTP client's
// 32 KiB copy buffer and the reader's current 1 MiB chunk; but gRPC buffers up to its
// stream window (the sdk's 8 MiB) of each PutPart stream that the host sends faster than S3
// takes it. Buffering a 50 MiB part would exceed the bound.
const (
	pluginBase = 64 << 20
	grpcWindow = 8 << 20
)

// TestPartsPluginMemory starts the plugin binary as the host does (go-plugin, gRPC over a
// Unix socket), stores a 512 MiB object in 50 MiB parts sent four at a time, and checks the
// plugin's peak resident memory (VmHWM) and the object read back.
func TestPartsPluginMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("512 MiB object skipped under -short")
	}
	e := newPartEnv(t)
	const (
		size     = 512 << 20
		partSize = 50 << 20
		inFlight = 4
	)
	// Put's buffers (S3_PART_SIZE_MB x S3_CONCURRENCY) are reserved in the plugin's memory
	// limit whether used or not; the smallest ones keep the garbage collector from letting
	// the heap grow into them, so that a buffered part would show.
	cfg := e.srv.settings(e.bucket)
	cfg["S3_PART_SIZE_MB"] = "5"
	cfg["S3_CONCURRENCY"] = "1"
	const reserved = 5 << 20
	r, pid := startPlugin(t, cfg)
	start := vmHWM(t, pid)

	spec := sdk.ObjectSpec{Size: size, PartSize: partSize, PartCount: (size + partSize - 1) / partSize}
	// Parts are generated twice, to hash them first and to send them, and never held.
	infos := make([]sdk.PartInfo, spec.PartCount)
	whole := sha256.New()
	for n := range infos {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(h, whole), genPart(n, spec.PartSizeOf(n))); err != nil {
			t.Fatal(err)
		}
		infos[n] = sdk.PartInfo{Number: n, Size: spec.PartSizeOf(n), SHA256: h.Sum(nil)}
	}
	const key = "memory/object.bin"
	handle, err := r.BeginObject(t.Context(), key, spec)
	if err != nil {
		t.Fatalf("BeginObject: %v", err)
	}
	receipts := make([][]byte, spec.PartCount)
	errs := make([]error, spec.PartCount)
	next := make(chan int)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for n := range next {
				receipts[n], errs[n] = r.PutPart(t.Context(), handle, infos[n], genPart(n, infos[n].Size))
			}
		})
	}
	for n := range spec.PartCount {
		next <- n
	}
	close(next)
	wg.Wait()
	for n, err := range errs {
		if err != nil {
			t.Fatalf("PutPart %d: %v", n, err)
		}
	}
	peak := vmHWM(t, pid)
	obj, err := r.CommitObject(t.Context(), handle, receipts, whole.Sum(nil))
	if err != nil {
		t.Fatalf("CommitObject: %v", err)
	}
	if obj.Size != size || !bytes.Equal(obj.SHA256, whole.Sum(nil)) {
		t.Errorf("CommitObject returned %+v, want size %d sha256 %x", obj, int64(size), whole.Sum(nil))
	}
	bound := int64(pluginBase + reserved + inFlight*grpcWindow)
	t.Logf("plugin VmHWM: %.1f MiB after Configure, %.1f MiB after %d parts of %d MiB sent %d at a time (bound %d MiB)",
		float64(start)/(1<<20), float64(peak)/(1<<20), spec.PartCount, partSize>>20, inFlight, bound>>20)
	if peak > bound {
		t.Errorf("plugin VmHWM %.1f MiB exceeds %d MiB: parts are buffered", float64(peak)/(1<<20), bound>>20)
	}

	out, err := e.admin.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer out.Body.Close()
	back := sha256.New()
	if n, err := io.Copy(back, out.Body); err != nil || n != size || !bytes.Equal(back.Sum(nil), whole.Sum(nil)) {
		t.Errorf("read back %d bytes (err %v) with sha256 %x, want %d with %x", n, err, back.Sum(nil), int64(size), whole.Sum(nil))
	}
	e.checkNoUploads(t)
}

// genPart returns the content of part n: size pseudo-random bytes of its own.
func genPart(n int, size int64) io.Reader {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(n))
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

// built is the plugin binary this test process built, in a directory TestMain removes.
var built struct {
	once     sync.Once
	dir, bin string
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// pluginBinary returns the plugin binary: from CHUNKED_UPLOADER_BIN_DIR when set (make
// test builds it there), otherwise built once for this test process.
func pluginBinary(t *testing.T) string {
	t.Helper()
	const name = "chunked-uploader-plugin-s3"
	if dir := os.Getenv("CHUNKED_UPLOADER_BIN_DIR"); dir != "" {
		bin := filepath.Join(dir, name)
		if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
			t.Fatalf("%s is not an executable file (CHUNKED_UPLOADER_BIN_DIR=%q; run make build)", bin, dir)
		}
		return bin
	}
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "s3store-bin-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, name)
		out, err := exec.Command("go", "build", "-o", built.bin, "github.com/chunked-uploader/chunked-uploader/plugins/s3").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("building the plugin: %v", built.err)
	}
	return built.bin
}

// startPlugin starts the plugin binary as the host's plugin manager does, configures it
// with settings and returns its Remote and process id. The process is killed when the test
// ends, if not before.
func startPlugin(t *testing.T, settings sdk.Config) (pluginhost.Remote, int) {
	r, pid, _ := startPluginKill(t, settings)
	return r, pid
}

// startPluginKill is startPlugin that also returns a function killing the process.
func startPluginKill(t *testing.T, settings sdk.Config) (pluginhost.Remote, int, func()) {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "s3store-plugin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	cmd := exec.Command(pluginBinary(t))
	cmd.Env = []string{plugin.EnvUnixSocketDir + "=" + sockDir}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          pluginhost.PluginSet(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		GRPCDialOptions:  []grpc.DialOption{grpc.WithWriteBufferSize(1 << 20), grpc.WithReadBufferSize(64 << 10)},
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("Dispense: %v", err)
	}
	r := raw.(pluginhost.Remote)
	info, err := r.Configure(t.Context(), settings)
	if err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if info.Parts == nil {
		t.Fatal("the plugin does not announce part-wise storage")
	}
	return r, client.ReattachConfig().Pid, client.Kill
}

// vmHWM returns the peak resident memory of process pid, in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the plugin's memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM line %q: %v", sc.Text(), err)
			}
			return kib << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
