package reliability

import (
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chunked-uploader/chunked-uploader/cmd/internal/harness"
)

// TestAttack is the bounded attack of issue 10 (loopback only, under 60 s): 500
// connections at once, half anonymous with bodies they never send, half PUTs of one part
// with one valid token that stall or trickle. While it runs, /health answers within 1 s
// and a normal 20 MiB upload completes; the host stays under 128 MiB of resident memory;
// staging holds no more than the reservations; every stalled connection is closed within
// the body idle timeout (shortened here).
func TestAttack(t *testing.T) {
	const (
		anonymous = 250
		parts     = 250
		idle      = 3 * time.Second
	)
	s := startServer(t, "local", map[string]string{"CHUNK_SIZE_MB": "1", "BODY_IDLE_TIMEOUT": idle.String()})
	host := s.Cur()
	victim := s.InitUpload(t, map[string]any{"filename": "attack/victim.bin", "total_size": 2 * mib})

	var closed atomic.Int64 // attacking connections the server closed
	var wg sync.WaitGroup
	conns := make(chan *harness.RawConn, anonymous+parts)
	watch := func(c *harness.RawConn) {
		defer wg.Done()
		// A closed connection reads an answer or EOF; one still open blocks until the end.
		_ = c.Conn.SetReadDeadline(time.Now().Add(40 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Conn.Read(buf); err != nil {
				closed.Add(1)
				return
			}
		}
	}
	start := time.Now()
	for i := range anonymous {
		// Declared bodies never sent, to routes that do not read them.
		path := []string{"/health", "/no/such/route", "/upload/init"}[i%3]
		method := map[string]string{"/health": http.MethodGet, "/no/such/route": http.MethodGet, "/upload/init": http.MethodPost}[path]
		c := s.OpenRaw(t, method, path, map[string]string{"X-API-Key": "wrong-key"}, 100)
		conns <- c
		wg.Add(1)
		go watch(c)
	}
	var trickling []*harness.RawConn
	for i := range parts {
		c := s.OpenPart(t, victim.FileID, 0, victim.Parts[0].Token, mib)
		conns <- c
		if err := c.Write(make([]byte, 4096)); err != nil {
			t.Fatalf("PUT %d: %v", i, err)
		}
		if i%2 == 1 {
			trickling = append(trickling, c)
		}
		wg.Add(1)
		go watch(c)
	}
	stopTrickle := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopTrickle:
				return
			case <-tick.C:
				for _, c := range trickling {
					_ = c.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
					_, _ = c.Conn.Write([]byte{0})
				}
			}
		}
	}()
	t.Logf("500 attacking connections open after %v", time.Since(start).Round(time.Millisecond))

	// Memory and staging, sampled while the attack runs.
	var maxRSS atomic.Int64
	var maxStaged atomic.Int64
	stopSample := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if kib := rssKiB(host.PID()); int64(kib) > maxRSS.Load() {
				maxRSS.Store(int64(kib))
			}
			if n := dirBytes(s.Staging()); n > maxStaged.Load() {
				maxStaged.Store(n)
			}
			select {
			case <-stopSample:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	// /health answers within 1 s, several times over the attack.
	var slowest time.Duration
	for range 5 {
		r, d := timedHealth(t, s)
		if r.Status != http.StatusOK {
			t.Errorf("/health during the attack: %v", r)
		}
		slowest = max(slowest, d)
		time.Sleep(200 * time.Millisecond)
	}
	if slowest > time.Second {
		t.Errorf("/health took %v during the attack, want at most 1 s", slowest)
	}

	// A normal upload of 20 MiB completes with the right bytes.
	data := harness.RandomBytes(20*mib, 77)
	up := s.InitUpload(t, map[string]any{"filename": "attack/normal.bin", "total_size": len(data)})
	s.UploadParts(t, up, harness.PartData(data, mib), 4)
	c := s.CompleteAndWait(t, up.FileID, 30*time.Second)
	if sum, n := harness.FileSHA256(harness.Str(c.FinalPath)); sum != harness.SHA256Hex(data) || n != int64(len(data)) {
		t.Errorf("the normal upload delivered %d bytes sha256 %s, want %d bytes %s", n, sum, len(data), harness.SHA256Hex(data))
	}

	// Every stalled connection is closed within the idle timeout (plus the time to open
	// them all); only the newest trickling PUT of the part may still be open.
	deadline := start.Add(idle + 10*time.Second)
	for closed.Load() < anonymous+parts-1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	open := anonymous + parts - int(closed.Load())
	t.Logf("%d of 500 attacking connections closed by the server %v after the attack began (%d open)",
		closed.Load(), time.Since(start).Round(time.Millisecond), open)
	if open > 1 {
		t.Errorf("%d attacking connections still open %v after the attack began, want at most the newest trickling PUT",
			open, time.Since(start).Round(time.Millisecond))
	}
	close(stopTrickle)
	close(stopSample)
	<-sampled
	close(conns)
	for c := range conns {
		c.Close()
	}
	wg.Wait()

	rss := maxRSS.Load() >> 10
	t.Logf("host peak RSS during the attack %d MiB; staging peak %d KiB; /health slowest %v", rss, maxStaged.Load()>>10, slowest)
	if rss >= 128 {
		t.Errorf("host RSS reached %d MiB during the attack, want under 128 MiB", rss)
	}
	// Reserved: the victim (2 MiB) and the normal upload (20 MiB).
	if limit := int64(22 * mib); maxStaged.Load() > limit {
		t.Errorf("staging held %d bytes, more than the %d reserved", maxStaged.Load(), limit)
	}
	if st := s.Status(t, victim.FileID); st.UploadedParts != 0 {
		t.Errorf("the attacked part was stored: %+v", st)
	}
}

// dirBytes is the size of the regular files under root.
func dirBytes(root string) int64 {
	var n int64
	_ = filepath.Walk(root, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
		return nil
	})
	return n
}
