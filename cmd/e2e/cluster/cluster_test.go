package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/lb"
	"github.com/chunked-uploader/chunked-uploader/cmd/e2e/internal/services"
	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// Settings of the test cluster.
const (
	// checkInterval is HAProxy's health check interval in the test (2 s in production).
	checkInterval = "500ms"
	// drainTimeout is the nodes' DRAIN_TIMEOUT.
	drainTimeout = 5 * time.Second
	// startTimeout bounds a node's start.
	startTimeout = time.Minute
	// waitTimeout bounds every wait for the balancer to notice a change.
	waitTimeout = time.Minute
)

var nodeNames = []string{"a", "b", "c"}

// cluster is three nodes delivering to one bucket, behind one balancer.
type cluster struct {
	kind   string
	s3     services.S3
	bucket string
	nodes  map[string]*lb.Node
	lb     *lb.Balancer
}

func (c *cluster) url() string { return c.lb.URL() }

// startCluster starts nodes a, b and c and the balancer kind in front of them; all stop
// when the test ends (their logs are printed if it failed).
func startCluster(t *testing.T, kind string, svc services.S3) *cluster {
	t.Helper()
	c := &cluster{kind: kind, s3: svc, bucket: svc.NewBucket(t, "cluster-"), nodes: map[string]*lb.Node{}}
	ports, err := lb.FreePorts(len(nodeNames) + 1)
	if err != nil {
		t.Fatal(err)
	}
	var order []*lb.Node
	for i, name := range nodeNames {
		env := nodeEnv(svc, c.bucket)
		env["API_KEY"] = testAPIKey
		env["JWT_SECRET"] = testJWTSecret
		env["CHUNK_SIZE_MB"] = "1"
		env["DRAIN_TIMEOUT"] = drainTimeout.String()
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n, err := lb.NewNode(harness.BinDir(), name, dir, ports[i], env)
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[name] = n
		order = append(order, n)
	}
	t.Cleanup(func() {
		// At once: each drains for DRAIN_TIMEOUT.
		var wg sync.WaitGroup
		for _, n := range order {
			wg.Go(n.Stop)
		}
		wg.Wait()
		if t.Failed() {
			for _, n := range order {
				t.Logf("log of node %s:\n%s", n.Name, n.Log())
			}
		}
	})
	for _, n := range order {
		if err := n.Start(startTimeout); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := lb.StartBalancer(repoRoot, kind, dir, ports[len(nodeNames)], order, "--check-interval", checkInterval, "--chunk-mb", "1")
	if err != nil {
		t.Fatal(err)
	}
	c.lb = b
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", kind, b.Log())
		}
	})
	return c
}

// TestCluster runs the whole story once behind HAProxy and once behind nginx.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 2 × 3 nodes and 2 balancers; skipped under -short only (without -short it needs haproxy, nginx, node and S3, and fails without them)")
	}
	svc := services.SharedS3(t)
	nodeJS := nodeExecutable(t)
	sdk := sdkEntry(t)
	for _, kind := range []string{lb.HAProxy, lb.Nginx} {
		if _, err := lb.Executable(kind); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{lb.HAProxy, lb.Nginx} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t, kind, svc)
			// In order: each step leaves every node up.
			var cli []delivered
			steps := []struct {
				name string
				f    func(t *testing.T)
			}{
				{"SpreadCLI", func(t *testing.T) { cli = c.spreadCLI(t) }},
				{"SpreadSDK", func(t *testing.T) { c.spreadSDK(t, nodeJS, sdk) }},
				{"Tus", c.tusUploads},
				{"Metrics", c.metrics},
				{"WrongNode", func(t *testing.T) { c.wrongNode(t, cli) }},
				{"KillNode", c.killNode},
				{"TermNode", c.termNode},
			}
			for _, s := range steps {
				if !t.Run(s.name, s.f) {
					t.FailNow()
				}
			}
		})
	}
}

// delivered is an upload a client (the CLI's --json, the SDK) reported as delivered.
type delivered = harness.Result

// spreadCLI uploads six files through the balancer with the CLI, one after the other:
// init goes round robin, so each node creates some of them, and every file arrives intact.
func (c *cluster) spreadCLI(t *testing.T) []delivered {
	dir := t.TempDir()
	owners := map[string]int{}
	var out []delivered
	for i := range 6 {
		data := randomData(2*mib+1000*i+1, uint64(100+i))
		path := filepath.Join(dir, fmt.Sprintf("cli-%d.bin", i))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(harness.Bin(harness.CLIBinary), "--json", "--quiet", "upload", path, "--path", "cli/"+c.kind)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "CHUNKED_UPLOADER_URL=" + c.url(), "API_KEY=" + testAPIKey}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chunked-upload upload %s through %s: %v\n%s", path, c.kind, err, stderr.Bytes())
		}
		var d delivered
		if err := json.Unmarshal(stdout.Bytes(), &d); err != nil {
			t.Fatalf("chunked-upload --json printed %q: %v", stdout.Bytes(), err)
		}
		if d.TotalSize != int64(len(data)) {
			t.Errorf("CLI upload %s: total_size %d, want %d", d.FileID, d.TotalSize, len(data))
		}
		checkDelivered(t, c.s3, c.bucket, d.FileID, d.FinalPath, data)
		owners[owner(t, d.FileID)]++
		out = append(out, d)
	}
	c.checkSpread(t, "CLI", owners)
	return out
}

// checkSpread asserts that every node created some of the uploads, and no one else.
func (c *cluster) checkSpread(t *testing.T, client string, owners map[string]int) {
	t.Helper()
	for name := range owners {
		if c.nodes[name] == nil {
			t.Errorf("%s uploads: an upload id names node %q, which is not in the cluster", client, name)
		}
	}
	for _, name := range nodeNames {
		if owners[name] == 0 {
			t.Errorf("%s uploads through %s: node %s created none (owners %v), want init round robin over all nodes", client, c.kind, name, owners)
		}
	}
	t.Logf("%s uploads through %s, by node: %v", client, c.kind, owners)
}

// spreadSDK uploads six files through the balancer with the TypeScript SDK in Node.
func (c *cluster) spreadSDK(t *testing.T, nodeJS, sdk string) {
	dir := t.TempDir()
	files := map[string][]byte{}
	args := []string{filepath.Join(repoRoot, "cmd", "e2e", "cluster", "testdata", "sdk-upload.mjs"), sdk, c.url(), "sdk/" + c.kind}
	for i := range 6 {
		data := randomData(3*mib-500*i, uint64(200+i))
		path := filepath.Join(dir, fmt.Sprintf("sdk-%d.bin", i))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		files[path] = data
		args = append(args, path)
	}
	cmd := exec.Command(nodeJS, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "API_KEY=" + testAPIKey}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node sdk-upload.mjs through %s: %v\nstdout: %s\nstderr: %s", c.kind, err, stdout.Bytes(), stderr.Bytes())
	}
	owners := map[string]int{}
	n := 0
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var r struct {
			File, FileID, FinalPath, Error string
			Success                        bool
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("sdk-upload.mjs printed %q: %v", sc.Bytes(), err)
		}
		if !r.Success {
			t.Errorf("SDK upload of %s through %s failed: %s", r.File, c.kind, r.Error)
			continue
		}
		checkDelivered(t, c.s3, c.bucket, r.FileID, r.FinalPath, files[r.File])
		owners[owner(t, r.FileID)]++
		n++
	}
	if n != len(files) {
		t.Fatalf("the SDK delivered %d of %d files", n, len(files))
	}
	c.checkSpread(t, "SDK", owners)
}

// metrics: every node's metrics carry its name, and each received bytes.
func (c *cluster) metrics(t *testing.T) {
	for _, name := range nodeNames {
		if got := metric(t, c.nodes[name].URL(), name, "chunked_uploader_bytes_received_total"); got <= 0 {
			t.Errorf("node %s received %v bytes, want some", name, got)
		}
	}
}

// wrongNode: a request sent straight to a node that does not hold the upload gets 421 with
// the owner's name, for every route; through the balancer the same requests succeed.
func (c *cluster) wrongNode(t *testing.T, done []delivered) {
	checked := map[string]bool{}
	for _, d := range done {
		own := owner(t, d.FileID)
		if checked[own] {
			continue
		}
		checked[own] = true
		for _, other := range nodeNames {
			if other == own {
				continue
			}
			for _, r := range []struct{ method, path string }{
				{http.MethodGet, "/upload/" + d.FileID + "/status"},
				{http.MethodPost, "/upload/" + d.FileID + "/complete"},
				{http.MethodDelete, "/upload/" + d.FileID},
			} {
				a := mustSend(t, r.method, c.nodes[other].URL()+r.path, key(), nil)
				c.checkWrongNode(t, a, r.method+" "+r.path+" on node "+other, own, other)
			}
		}
		if a := mustSend(t, http.MethodGet, c.url()+"/upload/"+d.FileID+"/status", key(), nil); a.status != 200 || a.field("status") != "complete" {
			t.Errorf("status of %s through %s: %v, want 200 complete", d.FileID, c.kind, a)
		}
	}
	// A part sent to the wrong node: 421 before its body is read; to the balancer: stored.
	data := randomData(mib+10, 300)
	up := initUpload(t, c.url(), "wrong-node.bin", int64(len(data)))
	own := owner(t, up.FileID)
	for _, other := range nodeNames {
		if other != own {
			a, err := putPart(c.nodes[other].URL(), up, 0, data)
			if err != nil {
				t.Fatalf("PUT part to node %s: %v", other, err)
			}
			c.checkWrongNode(t, a, "PUT part 0 on node "+other, own, other)
		}
	}
	mustPutPart(t, c.url(), up, 0, data)
	if a := mustSend(t, http.MethodDelete, c.url()+"/upload/"+up.FileID, key(), nil); a.status != 200 {
		t.Errorf("cancel through %s: %v", c.kind, a)
	}
}

func (c *cluster) checkWrongNode(t *testing.T, a answer, what, own, other string) {
	t.Helper()
	var body struct {
		Error, Code string
		Status      int
	}
	_ = json.Unmarshal(a.body, &body)
	var raw map[string]any
	_ = json.Unmarshal(a.body, &raw)
	if a.status != http.StatusMisdirectedRequest || body.Code != "wrong_node" || body.Status != 421 ||
		raw["owner_node"] != own || raw["node"] != other || !strings.Contains(body.Error, "node "+own) {
		t.Errorf("%s: %v, want 421 wrong_node naming owner %s", what, a, own)
	}
}

// initOn creates uploads through the balancer until one lands on node want (round robin:
// at most one per node), and cancels the others.
func (c *cluster) initOn(t *testing.T, want, filename string, size int64) harness.InitResponse {
	t.Helper()
	for range 2 * len(nodeNames) {
		up := initUpload(t, c.url(), filename, size)
		if owner(t, up.FileID) == want {
			return up
		}
		if a := mustSend(t, http.MethodDelete, c.url()+"/upload/"+up.FileID, key(), nil); a.status != 200 {
			t.Fatalf("cancel %s: %v", up.FileID, a)
		}
	}
	t.Fatalf("%d inits through %s, none on node %s", 2*len(nodeNames), c.kind, want)
	return harness.InitResponse{}
}

// initsAvoid makes n inits through the balancer: every one must succeed on a node other
// than down. They are cancelled.
func (c *cluster) initsAvoid(t *testing.T, n int, down string) map[string]int {
	t.Helper()
	owners := map[string]int{}
	for range n {
		up := initUpload(t, c.url(), "while-"+down+"-is-down.bin", 10)
		own := owner(t, up.FileID)
		owners[own]++
		if own == down {
			t.Errorf("init through %s landed on node %s, which is down or stopping", c.kind, down)
		}
		if a := mustSend(t, http.MethodDelete, c.url()+"/upload/"+up.FileID, key(), nil); a.status != 200 {
			t.Errorf("cancel %s: %v", up.FileID, a)
		}
	}
	return owners
}

// slowPart is a part upload whose body the test writes itself, so that it is in flight
// while the test does something to the node.
type slowPart struct {
	w      *io.PipeWriter
	part   []byte
	result chan answer
	err    chan error
}

// startSlowPart starts sending part n of up through base and writes its first half.
func startSlowPart(base string, up harness.InitResponse, n int, data []byte) *slowPart {
	part := data[int64(n)*up.ChunkSize : min(int64(n+1)*up.ChunkSize, int64(len(data)))]
	r, w := io.Pipe()
	p := &slowPart{w: w, part: part, result: make(chan answer, 1), err: make(chan error, 1)}
	go func() {
		a, err := send(http.MethodPut, base+"/upload/"+up.FileID+"/part/"+strconv.Itoa(n), bearer(up.Parts[n].Token), r, int64(len(part)))
		r.CloseWithError(io.ErrClosedPipe)
		if err != nil {
			p.err <- err
			return
		}
		p.result <- a
	}()
	go func() { _, _ = w.Write(part[:len(part)/2]) }()
	return p
}

// finish writes the second half and returns the answer.
func (p *slowPart) finish() (answer, error) {
	go func() {
		_, err := p.w.Write(p.part[len(p.part)/2:])
		p.w.CloseWithError(err)
	}()
	select {
	case a := <-p.result:
		return a, nil
	case err := <-p.err:
		return answer{}, err
	}
}

// abort ends the body early and returns what the request got.
func (p *slowPart) abort() string {
	p.w.CloseWithError(io.ErrUnexpectedEOF)
	select {
	case a := <-p.result:
		return a.String()
	case err := <-p.err:
		return err.Error()
	}
}

// waitInFlight waits until node n is receiving a part (its parts_in_flight metric).
func waitInFlight(t *testing.T, n *lb.Node) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for metric(t, n.URL(), n.Name, "chunked_uploader_parts_in_flight") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("node %s shows no part in flight after %v", n.Name, waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStatus polls GET /upload/{id}/status through the balancer until it answers want and
// returns how long that took from since.
func (c *cluster) waitStatus(t *testing.T, id string, want int, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		a, err := send(http.MethodGet, c.url()+"/upload/"+id+"/status?include_parts=false", key(), nil, 0)
		if err == nil && a.status == want {
			return time.Since(since)
		}
		if err != nil {
			last = err.Error()
		} else {
			last = a.String()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("status of %s through %s not %d within %v (last: %s)", id, c.kind, want, waitTimeout, last)
	return 0
}

// watchServerState starts watching HAProxy's state of node name's server in backend, from
// since; the returned func waits until the state starts with prefix (and is not a
// transition such as "UP 1/2") and returns how long that took. For nginx, which has no
// such state, it returns -1.
func (c *cluster) watchServerState(t *testing.T, backend, name, prefix string, since time.Time) func() time.Duration {
	t.Helper()
	if c.kind != lb.HAProxy {
		return func() time.Duration { return -1 }
	}
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() {
		deadline := time.Now().Add(waitTimeout)
		var last string
		for time.Now().Before(deadline) {
			st, err := c.lb.ServerState(backend, name)
			if err != nil {
				done <- result{err: err}
				return
			}
			if strings.HasPrefix(st, prefix) && !strings.Contains(st, "/") {
				done <- result{took: time.Since(since)}
				return
			}
			last = st
			time.Sleep(10 * time.Millisecond)
		}
		done <- result{err: fmt.Errorf("HAProxy shows %s/%s %q after %v, want %s", backend, name, last, waitTimeout, prefix)}
	}()
	return func() time.Duration {
		t.Helper()
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.took
	}
}

// since prints a duration of watchServerState.
func since(d time.Duration) string {
	if d < 0 {
		return "n/a (no active health checks)"
	}
	return d.Round(time.Millisecond).String()
}

// steadyUpload is an upload on a node that stays up: half its parts go before an event,
// the rest after it; every part must succeed at the first attempt.
type steadyUpload struct {
	up   harness.InitResponse
	data []byte
	path string // final_path once delivered
}

// run sends the first half of the parts, closes halfway, waits for gate, sends the rest and
// completes. Errors are reported to t.
func (s *steadyUpload) run(t *testing.T, base string, halfway chan<- struct{}, gate <-chan struct{}) {
	var once sync.Once
	signal := func() { once.Do(func() { close(halfway) }) }
	defer signal()
	n := s.up.TotalParts
	for i := range n {
		if i == n/2 {
			signal()
			<-gate
		}
		a, err := putPart(base, s.up, i, s.data)
		if err != nil || a.status != http.StatusOK {
			t.Errorf("part %d of %s (node %s): %v %v, want 200 at the first attempt", i, s.up.FileID, owner(t, s.up.FileID), a, err)
			return
		}
	}
	s.path = complete(t, base, s.up.FileID)
}

// killNode: node b is killed (SIGKILL, with its plugin) in the middle of a part. Its upload
// gets 503 from the balancer while it is down and completes after it restarts; uploads on
// a and c, running at the same time, complete at their first attempts; new uploads go to a
// and c.
func (c *cluster) killNode(t *testing.T) {
	b := c.nodes["b"]
	data := randomData(4*mib, 400)
	ub := c.initOn(t, "b", "kill/b.bin", int64(len(data)))
	mustPutPart(t, c.url(), ub, 0, data)
	mustPutPart(t, c.url(), ub, 1, data)

	steady := map[string]*steadyUpload{}
	gate := make(chan struct{})
	var running sync.WaitGroup
	var halfway []chan struct{}
	for i, name := range []string{"a", "c"} {
		d := randomData(6*mib+333, uint64(410+i))
		s := &steadyUpload{up: c.initOn(t, name, "kill/"+name+".bin", int64(len(d))), data: d}
		steady[name] = s
		h := make(chan struct{})
		halfway = append(halfway, h)
		running.Go(func() { s.run(t, c.url(), h, gate) })
	}
	for _, h := range halfway {
		<-h // a and c are halfway
	}

	inflight := startSlowPart(c.url(), ub, 2, data)
	waitInFlight(t, b)
	killed := time.Now()
	if err := b.Kill(); err != nil {
		t.Fatal(err)
	}
	markedDown := c.watchServerState(t, "node_b", "b", "DOWN", killed)
	t.Logf("node b killed with part 2 of %s in flight; that request got: %s", ub.FileID, inflight.abort())

	toFirst503 := c.waitStatus(t, ub.FileID, http.StatusServiceUnavailable, killed)
	for range 3 {
		a := mustSend(t, http.MethodGet, c.url()+"/upload/"+ub.FileID+"/status", key(), nil)
		if a.status != http.StatusServiceUnavailable || a.field("code") != "node_unavailable" {
			t.Errorf("status of b's upload through %s while b is down: %v, want 503 node_unavailable", c.kind, a)
		}
	}
	initStart := time.Now()
	owners := c.initsAvoid(t, 6, "b")
	initTook := time.Since(initStart) / 6

	close(gate)
	running.Wait()
	if b.Running() {
		t.Fatal("node b runs again before the uploads of a and c ended")
	}
	for name, s := range steady {
		if s.path == "" {
			t.Fatalf("the upload on node %s did not complete while b was down", name)
		}
		checkDelivered(t, c.s3, c.bucket, s.up.FileID, s.path, s.data)
	}

	restarted := time.Now()
	if err := b.Start(startTimeout); err != nil {
		t.Fatal(err)
	}
	backUp := c.waitStatus(t, ub.FileID, http.StatusOK, restarted)
	if got, want := partStates(t, c.url(), ub.FileID), []string{"uploaded", "uploaded", "pending", "pending"}; !slices.Equal(got, want) {
		t.Fatalf("parts of %s after b restarted: %v, want %v (the part cut by the kill is pending)", ub.FileID, got, want)
	}
	mustPutPart(t, c.url(), ub, 2, data)
	mustPutPart(t, c.url(), ub, 3, data)
	checkDelivered(t, c.s3, c.bucket, ub.FileID, complete(t, c.url(), ub.FileID), data)
	t.Logf("%s, SIGKILL of node b: first 503 for its upload after %v, b marked DOWN after %v; inits while down %v (%v each); "+
		"b restarted and its upload routed again %v after the start", c.kind, toFirst503.Round(time.Millisecond),
		since(markedDown()), owners, initTook.Round(time.Millisecond), backUp.Round(time.Millisecond))
}

// termNode: node c is stopped with SIGTERM while a part is in flight: the part completes, the
// balancer sends new uploads to a and b, c exits with status 0, its upload gets 503 until c
// is back, then completes.
func (c *cluster) termNode(t *testing.T) {
	n := c.nodes["c"]
	data := randomData(4*mib-7, 500)
	uc := c.initOn(t, "c", "term/c.bin", int64(len(data)))
	mustPutPart(t, c.url(), uc, 0, data)
	inflight := startSlowPart(c.url(), uc, 1, data)
	waitInFlight(t, n)
	termed := time.Now()
	if err := n.Term(); err != nil {
		t.Fatal(err)
	}
	// Out of the rotation for new uploads; it stays up for its own.
	markedDown := c.watchServerState(t, "any_node", "c", "DOWN", termed)
	// Straight to c: /health says draining (the balancer's check fails) ...
	deadline := time.Now().Add(waitTimeout)
	for {
		a, err := send(http.MethodGet, n.URL()+"/health", nil, nil, 0)
		if err == nil && a.status == http.StatusServiceUnavailable && a.field("status") == "draining" {
			break
		}
		if time.Now().After(deadline) || !n.Running() {
			t.Fatalf("node c's /health after SIGTERM: %v %v, want 503 draining during DRAIN_TIMEOUT=%v", a, err, drainTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ... and init 503 node_draining, which the balancer takes to another node.
	h := key()
	h["Content-Type"] = "application/json"
	if a := mustSend(t, http.MethodPost, n.URL()+"/upload/init", h, []byte(`{"filename":"x.bin","total_size":1}`)); a.status != http.StatusServiceUnavailable || a.field("code") != "node_draining" {
		t.Errorf("init straight to draining node c: %v, want 503 node_draining", a)
	}
	during := c.initsAvoid(t, 6, "c")
	// While c drains, even once the balancer sends it no new uploads, requests about its own
	// uploads reach it.
	downAfter := markedDown()
	if a := mustSend(t, http.MethodGet, c.url()+"/upload/"+uc.FileID+"/status", key(), nil); time.Since(termed) < drainTimeout-time.Second {
		if a.status != http.StatusOK {
			t.Errorf("status of c's upload through %s while c drains (%v after SIGTERM; out of the rotation for new uploads after %v): %v, want 200",
				c.kind, time.Since(termed).Round(time.Millisecond), since(downAfter), a)
		}
	} else {
		t.Logf("the drain was nearly over (%v after SIGTERM) before c's upload could be checked through %s", time.Since(termed), c.kind)
	}

	a, err := inflight.finish()
	if err != nil || a.status != http.StatusOK || a.field("status") != "uploaded" {
		t.Fatalf("part 1 of %s, in flight at SIGTERM: %v %v, want 200 uploaded", uc.FileID, a, err)
	}
	code, err := n.Wait(drainTimeout + 45*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("node c exited with status %d after SIGTERM, want 0", code)
	}
	stopped := time.Since(termed)
	after := c.initsAvoid(t, 3, "c")
	if a := mustSend(t, http.MethodGet, c.url()+"/upload/"+uc.FileID+"/status", key(), nil); a.status != http.StatusServiceUnavailable {
		t.Errorf("status of c's upload through %s while c is stopped: %v, want 503", c.kind, a)
	}

	restarted := time.Now()
	if err := n.Start(startTimeout); err != nil {
		t.Fatal(err)
	}
	backUp := c.waitStatus(t, uc.FileID, http.StatusOK, restarted)
	if got, want := partStates(t, c.url(), uc.FileID), []string{"uploaded", "uploaded", "pending", "pending"}; !slices.Equal(got, want) {
		t.Fatalf("parts of %s after c restarted: %v, want %v", uc.FileID, got, want)
	}
	mustPutPart(t, c.url(), uc, 2, data)
	mustPutPart(t, c.url(), uc, 3, data)
	checkDelivered(t, c.s3, c.bucket, uc.FileID, complete(t, c.url(), uc.FileID), data)
	t.Logf("%s, SIGTERM of node c: marked DOWN after %v, exited after %v; inits while draining %v, once stopped %v; "+
		"routed again %v after the restart", c.kind, since(downAfter), stopped.Round(time.Millisecond),
		during, after, backUp.Round(time.Millisecond))
}

// nodeExecutable finds node (Node.js); the test fails without it.
func nodeExecutable(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node (Node.js) is not on PATH: the TypeScript SDK runs in it")
	}
	return p
}

// sdkEntry is the built TypeScript SDK (sdk/js/dist/esm/index.js); the test fails when it is
// missing or older than the sources.
func sdkEntry(t *testing.T) string {
	t.Helper()
	entry := filepath.Join(repoRoot, "sdk", "js", "dist", "esm", "index.js")
	fi, err := os.Stat(entry)
	if err != nil {
		t.Fatalf("the TypeScript SDK is not built (%v): run `make sdk-js-build` (cd sdk/js && npm ci && npm run build)", err)
	}
	srcs, _ := filepath.Glob(filepath.Join(repoRoot, "sdk", "js", "src", "*.ts"))
	for _, s := range srcs {
		if si, err := os.Stat(s); err == nil && si.ModTime().After(fi.ModTime()) {
			t.Fatalf("the built TypeScript SDK is older than %s: run `make sdk-js-build`", s)
		}
	}
	return entry
}
