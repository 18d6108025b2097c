package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chunked-uploader/chunked-uploader/host"
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
	// MaxInFlight bounds the attempts running at once, over all receivers; default 16.
	// Each receiver (scheme, host and port) gets one attempt at a time, so a slow receiver
	// holds one of these and never delays the others.
	MaxInFlight int
	// Policy decides which receivers may be reached; nil refuses every non-public address.
	Policy *Policy
	// Resolver resolves receivers' names; nil uses the system's (tests inject one).
	Resolver *net.Resolver
	Logger   hclog.Logger
	Metrics  *metrics.Metrics // optional
}

// Per-receiver queue bounds: events beyond them stay in the outbox until there is room.
const (
	maxQueued      = 64   // events waiting for one receiver
	maxHeld        = 1024 // events held in memory over all receivers
	deferOverflow  = 5 * time.Second
	minLeaseLength = 30 * time.Second
)

// Sender sends queued events. Start it once; Close stops it (pending events stay queued).
//
// A loop takes due events from the outbox into one in-memory queue per receiver; a worker
// per receiver sends its queue in order, one attempt at a time, within MaxInFlight
// attempts over all receivers. An event taken is leased in the outbox (its next attempt
// moved past the lease) so that the loop does not read it again while it waits; after a
// crash it is sent when the lease ends.
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
	lease  time.Duration
	slots  chan struct{} // attempts in flight

	mu     sync.Mutex
	held   map[string]bool                // ids of events queued or in flight
	queues map[string][]host.WebhookEvent // by receiver; a worker runs while one exists
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
	if opt.MaxInFlight <= 0 {
		opt.MaxInFlight = 16
	}
	if opt.Logger == nil {
		opt.Logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	transport := &http.Transport{
		// Direct connections only: a proxy would connect wherever it is told, past the
		// address checks of the dialer.
		Proxy:                 nil,
		DialContext:           opt.Policy.DialContext(opt.Timeout, opt.Resolver),
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   opt.Timeout,
		ResponseHeaderTimeout: opt.Timeout,
	}
	return &Sender{
		outbox: outbox, opt: opt, log: opt.Logger,
		client: &http.Client{Timeout: opt.Timeout, Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer, not an instruction
		}},
		wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, now: time.Now,
		lease: max(minLeaseLength, 2*opt.Timeout), slots: make(chan struct{}, opt.MaxInFlight),
		held: map[string]bool{}, queues: map[string][]host.WebhookEvent{},
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

// Close stops the loop and the workers and waits for the attempts in flight. Events taken
// but not attempted are due again at once for the next Sender.
func (s *Sender) Close() {
	s.cancel()
	s.wg.Wait()
}

// loop takes what is due, then sleeps until the next event is due (at most Poll), a new
// event is queued (Wake), or the Sender closes.
func (s *Sender) loop() {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		for s.ctx.Err() == nil && s.takeDue() {
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

// takeDue moves the events due now into the receivers' queues and reports whether there
// may be more.
func (s *Sender) takeDue() bool {
	const batch = 32
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
		key := receiverKey(ev.URL)
		s.mu.Lock()
		held, full := s.held[ev.ID], len(s.queues[key]) >= maxQueued || len(s.held) >= maxHeld
		s.mu.Unlock()
		next := s.now().Add(s.lease)
		if !held && full {
			next = s.now().Add(deferOverflow) // no room: look again later
		}
		// Lease the event (or renew the lease of one still waiting in a queue). A lease
		// not taken means an attempt was recorded since the outbox was read.
		taken, err := s.outbox.Postpone(context.Background(), ev.ID, ev.Attempts, next)
		if err != nil {
			s.log.Error("leasing a webhook event", "event_id", ev.ID, "error", err)
			return false
		}
		if held || full || !taken {
			continue
		}
		s.mu.Lock()
		s.held[ev.ID] = true
		q, running := s.queues[key]
		s.queues[key] = append(q, ev)
		s.mu.Unlock()
		if !running {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.work(key)
			}()
		}
	}
	return len(events) == batch
}

// work sends the queue of one receiver, in order, until it is empty or the Sender closes.
func (s *Sender) work(key string) {
	for {
		s.mu.Lock()
		q := s.queues[key]
		if len(q) == 0 {
			delete(s.queues, key)
			s.mu.Unlock()
			return
		}
		ev := q[0]
		s.mu.Unlock()

		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			s.release(key)
			return
		}
		if s.ctx.Err() != nil {
			<-s.slots
			s.release(key)
			return
		}
		s.attempt(ev)
		<-s.slots

		s.mu.Lock()
		s.queues[key] = s.queues[key][1:]
		delete(s.held, ev.ID)
		s.mu.Unlock()
		if s.ctx.Err() != nil {
			s.release(key)
			return
		}
	}
}

// release gives the events still queued for key back to the outbox, due now.
func (s *Sender) release(key string) {
	s.mu.Lock()
	q := s.queues[key]
	delete(s.queues, key)
	for _, ev := range q {
		delete(s.held, ev.ID)
	}
	s.mu.Unlock()
	for _, ev := range q {
		if _, err := s.outbox.Postpone(context.Background(), ev.ID, ev.Attempts, ev.NextAt); err != nil {
			s.log.Warn("returning a webhook event to the outbox (it is sent when its lease ends)", "event_id", ev.ID, "error", err)
		}
	}
}

// attempt sends ev once and records the outcome.
func (s *Sender) attempt(ev host.WebhookEvent) {
	attempt := ev.Attempts + 1
	receiver := Redact(ev.URL)
	err := s.post(ev.URL, ev.ID, ev.Event, ev.Body, attempt)
	status, next, lastErr := StatusDelivered, s.now(), ""
	// A refused receiver counts as an ordinary failure, in the metrics too: /metrics must
	// not tell an API key holder which internal addresses exist.
	switch {
	case err == nil:
		s.opt.Metrics.WebhookAttempt("delivered")
		s.log.Info("webhook delivered", "event_id", ev.ID, "upload_id", ev.UploadID, "event", ev.Event, "attempt", attempt,
			"receiver", receiver)
	case attempt >= s.opt.MaxAttempts:
		status, lastErr = StatusFailed, err.Error()
		s.opt.Metrics.WebhookAttempt("given_up")
		s.log.Error("webhook given up", "event_id", ev.ID, "upload_id", ev.UploadID, "attempts", attempt,
			"receiver", receiver, "error", err)
	default:
		status, lastErr = StatusPending, err.Error()
		s.opt.Metrics.WebhookAttempt("failed")
		next = s.now().Add(s.backoff(attempt))
		s.log.Warn("webhook attempt failed", "event_id", ev.ID, "upload_id", ev.UploadID, "attempt", attempt,
			"receiver", receiver, "retry_at", next.UTC().Format(time.RFC3339), "error", err)
	}
	if err := s.outbox.RecordAttempt(context.Background(), ev.ID, attempt, status, next, lastErr, s.now()); err != nil {
		s.log.Error("recording a webhook attempt", "event_id", ev.ID, "error", err)
		return
	}
	if status == StatusPending {
		s.Wake() // the loop sleeps until the earliest due event, which this retry may now be
	}
}

// receiverKey names the receiver of a URL: its scheme, host and port.
func receiverKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Scheme + "://" + strings.ToLower(u.Host)
}

// backoff is the wait after failed attempt n: Backoff x 2^(n-1), capped, with +-20% jitter.
func (s *Sender) backoff(n int) time.Duration {
	d := s.opt.Backoff << min(n-1, 30)
	if d <= 0 || d > s.opt.MaxBackoff {
		d = s.opt.MaxBackoff
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (s *Sender) post(rawURL, id, event string, body []byte, attempt int) error {
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return errors.New("invalid webhook URL")
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
		// The client's errors quote the URL, which may carry secrets in its query.
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%s %s: %w", ue.Op, Redact(rawURL), ue.Err)
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}
