package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host/metrics"
)

// Options configure a Sender. Zero values take the defaults.
type Options struct {
	Secret      []byte        // HMAC key; nil sends no signature
	Timeout     time.Duration // per attempt; default 10 s
	MaxAttempts int           // default 10
	Backoff     time.Duration // wait after the first failure, doubled each time; default 2 s
	MaxBackoff  time.Duration // default 10 min
	Poll        time.Duration // how often the outbox is looked at without a wake-up; default 5 s
	Logger      hclog.Logger
	Metrics     *metrics.Metrics // optional
}

// Sender sends queued events. Start it once; Close stops it (pending events stay queued).
type Sender struct {
	outbox Outbox
	opt    Options
	client *http.Client
	log    hclog.Logger
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	now    func() time.Time
}

// NewSender returns a Sender reading from outbox.
func NewSender(outbox Outbox, opt Options) *Sender {
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 10
	}
	if opt.Backoff <= 0 {
		opt.Backoff = 2 * time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 10 * time.Minute
	}
	if opt.Poll <= 0 {
		opt.Poll = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Sender{
		outbox: outbox, opt: opt, log: opt.Logger,
		client: &http.Client{Timeout: opt.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, not an instruction
		}},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, now: time.Now,
	}
}

// Start runs the delivery loop in the background.
func (s *Sender) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.loop()
	}()
}

// Wake makes the loop look at the outbox now (after a new event was queued).
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops the loop and waits for an attempt in flight.
func (s *Sender) Close() {
	s.cancel()
	s.wg.Wait()
}

// loop sends what is due, then sleeps until the next event is due (at most Poll), a new
// event is queued (Wake), or the Sender closes.
func (s *Sender) loop() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		for s.ctx.Err() == nil && s.sendDue() {
		}
		wait := s.opt.Poll
		if next, ok, err := s.outbox.NextEventAt(s.ctx); err == nil && ok {
			wait = min(wait, max(time.Until(next), time.Millisecond))
		}
		t.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// sendDue sends the events due now and reports whether there may be more.
func (s *Sender) sendDue() bool {
	const batch = 16
	events, err := s.outbox.DueEvents(s.ctx, s.now(), batch)
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Error("reading the webhook outbox", "error", err)
		}
		return false
	}
	for _, ev := range events {
		if s.ctx.Err() != nil {
			return false
		}
		attempt := ev.Attempts + 1
		err := s.post(ev.URL, ev.ID, ev.Event, ev.Body, attempt)
		status, next, lastErr := StatusDelivered, s.now(), ""
		switch {
		case err == nil:
			s.opt.Metrics.WebhookAttempt("delivered")
			s.log.Info("webhook delivered", "event_id", ev.ID, "upload_id", ev.UploadID, "event", ev.Event, "attempt", attempt)
		case attempt >= s.opt.MaxAttempts:
			status, lastErr = StatusFailed, err.Error()
			s.opt.Metrics.WebhookAttempt("given_up")
			s.log.Error("webhook given up", "event_id", ev.ID, "upload_id", ev.UploadID, "attempts", attempt, "error", err)
		default:
			status, lastErr = StatusPending, err.Error()
			s.opt.Metrics.WebhookAttempt("failed")
			next = s.now().Add(s.backoff(attempt))
			s.log.Warn("webhook attempt failed", "event_id", ev.ID, "upload_id", ev.UploadID, "attempt", attempt,
				"retry_at", next.UTC().Format(time.RFC3339), "error", err)
		}
		if err := s.outbox.RecordAttempt(context.Background(), ev.ID, attempt, status, next, lastErr, s.now()); err != nil {
			s.log.Error("recording a webhook attempt", "event_id", ev.ID, "error", err)
			return false
		}
	}
	return len(events) == batch
}

// backoff is the wait after failed attempt n: Backoff x 2^(n-1), capped, with +-20% jitter.
func (s *Sender) backoff(n int) time.Duration {
	d := s.opt.Backoff << min(n-1, 30)
	if d <= 0 || d > s.opt.MaxBackoff {
		d = s.opt.MaxBackoff
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (s *Sender) post(url, id, event string, body []byte, attempt int) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := s.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chunked-uploader-webhook/1")
	req.Header.Set("X-Webhook-Id", id)
	req.Header.Set("X-Webhook-Event", event)
	req.Header.Set("X-Webhook-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Webhook-Attempt", strconv.Itoa(attempt))
	if s.opt.Secret != nil {
		req.Header.Set("X-Webhook-Signature", Sign(s.opt.Secret, ts, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
