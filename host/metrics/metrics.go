// Package metrics exposes the server's Prometheus metrics at /metrics.
//
// All methods are safe on a nil *Metrics (they do nothing), so packages can take one
// optionally.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chunked-uploader/chunked-uploader/sdk/buildinfo"
)

const namespace = "chunked_uploader"

// Metrics holds the server's metrics and their registry.
type Metrics struct {
	reg *prometheus.Registry

	bytesReceived    prometheus.Counter
	partDuration     prometheus.Histogram
	partsInFlight    prometheus.Gauge
	partsRejected    *prometheus.CounterVec
	deliveries       *prometheus.CounterVec
	deliveryDuration prometheus.Histogram
	bytesDelivered   prometheus.Counter
	webhookAttempts  *prometheus.CounterVec
	parts            partMetrics
}

// Sources are read at scrape time.
type Sources struct {
	// UploadsByState counts upload records by status.
	UploadsByState func(ctx context.Context) (map[string]int, error)
	// PluginRestarts is how often the storage plugin was restarted.
	PluginRestarts func() int
	// StagedBytes is the bytes held in staging; UndeliveredParts counts parts acknowledged
	// to clients that the backend does not hold yet (part-wise uploads).
	StagedBytes      func() (int64, error)
	UndeliveredParts func(ctx context.Context) (int, error)

	// Node, when set, is a constant label node="<Node>" on every metric (NODE_ID), so that the
	// series of several nodes behind one load balancer stay apart once collected.
	Node string

	// Build is what the running binary was built from, exported as the constant gauge
	// chunked_uploader_build_info{version,revision,go_version} 1; the zero Info means
	// buildinfo.Read().
	Build buildinfo.Info
}

// New registers the metrics (plus Go runtime and process metrics) in a registry of its own.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	var reg prometheus.Registerer = m.reg
	if src.Node != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": src.Node}, m.reg)
	}
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m.bytesReceived = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
		Name: "bytes_received_total", Help: "Bytes of parts stored (acknowledged)."})
	m.partDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace,
		Name: "part_upload_duration_seconds", Help: "Time from a part request's arrival to its acknowledgement.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}})
	m.partsInFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace,
		Name: "parts_in_flight", Help: "Part uploads being received now."})
	m.partsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
		Name: "parts_rejected_total", Help: "Part uploads refused, by error code."}, []string{"code"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
		Name: "deliveries_total", Help: "Deliveries to the storage backend that ended, by result (ok, failed)."}, []string{"result"})
	m.deliveryDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace,
		Name: "delivery_duration_seconds", Help: "Duration of successful deliveries.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2.5, 12)})
	m.bytesDelivered = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
		Name: "bytes_delivered_total", Help: "Bytes of files delivered to the storage backend."})
	m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace,
		Name: "webhook_attempts_total", Help: "Webhook attempts, by result (delivered, failed, given_up)."}, []string{"result"})
	for _, c := range []prometheus.Collector{m.bytesReceived, m.partDuration, m.partsInFlight, m.partsRejected,
		m.deliveries, m.deliveryDuration, m.bytesDelivered, m.webhookAttempts,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	build := src.Build
	if build == (buildinfo.Info{}) {
		build = buildinfo.Read()
	}
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help:        "Always 1; the labels say what the server was built from (module version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "go_version": build.GoVersion}},
		func() float64 { return 1 }))
	if src.PluginRestarts != nil {
		f(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: "plugin_restarts_total",
			Help: "Times the storage plugin process was restarted (it exited, crashed or hung)."},
			func() float64 { return float64(src.PluginRestarts()) }))
	}
	if src.UploadsByState != nil {
		f(&uploadsCollector{count: src.UploadsByState, desc: prometheus.NewDesc(namespace+"_uploads",
			"Upload records by status.", []string{"status"}, nil)})
	}
	m.registerParts(reg, src)
	// Pre-create the label values so that they show as 0 before the first event.
	for _, r := range []string{"ok", "failed"} {
		m.deliveries.WithLabelValues(r)
	}
	for _, r := range []string{"delivered", "failed", "given_up"} {
		m.webhookAttempts.WithLabelValues(r)
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// PartStarted records a part upload arriving; call the returned func when it ended, with
// the error code it was refused with ("" when stored) and the bytes stored.
func (m *Metrics) PartStarted() func(code string, stored int64) {
	if m == nil {
		return func(string, int64) {}
	}
	start := time.Now()
	m.partsInFlight.Inc()
	return func(code string, stored int64) {
		m.partsInFlight.Dec()
		if code != "" {
			m.partsRejected.WithLabelValues(code).Inc()
			return
		}
		m.partDuration.Observe(time.Since(start).Seconds())
		m.bytesReceived.Add(float64(stored))
	}
}

// Delivered records a delivery that ended.
func (m *Metrics) Delivered(ok bool, bytes int64, d time.Duration) {
	if m == nil {
		return
	}
	if !ok {
		m.deliveries.WithLabelValues("failed").Inc()
		return
	}
	m.deliveries.WithLabelValues("ok").Inc()
	m.deliveryDuration.Observe(d.Seconds())
	m.bytesDelivered.Add(float64(bytes))
}

// WebhookAttempt records a webhook attempt: "delivered", "failed" (will retry) or "given_up".
func (m *Metrics) WebhookAttempt(result string) {
	if m == nil {
		return
	}
	m.webhookAttempts.WithLabelValues(result).Inc()
}

// uploadsCollector counts uploads by status at scrape time.
type uploadsCollector struct {
	count func(ctx context.Context) (map[string]int, error)
	desc  *prometheus.Desc
}

func (c *uploadsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *uploadsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range []string{"pending", "finalizing", "complete", "failed", "expired"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), s)
	}
}
