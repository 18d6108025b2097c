package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// partMetrics are those of the background delivery of parts.
type partMetrics struct {
	delivered      prometheus.Counter
	deliveredBytes prometheus.Counter
	errors         prometheus.Counter
}

func (m *Metrics) registerParts(reg prometheus.Registerer, src Sources) {
	m.parts.delivered = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
		Name: "parts_delivered_total", Help: "Parts delivered to the storage backend in the background (part-wise uploads)."})
	m.parts.deliveredBytes = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
		Name: "part_bytes_delivered_total", Help: "Bytes of parts delivered to the storage backend in the background."})
	m.parts.errors = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace,
		Name: "background_delivery_errors_total", Help: "Failed background tasks of part-wise delivery (each is retried)."})
	reg.MustRegister(m.parts.delivered, m.parts.deliveredBytes, m.parts.errors)
	if src.StagedBytes != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "staging_bytes",
			Help: "Bytes held in staging: parts not yet delivered, or delivered out of order, and writes in flight."},
			func() float64 {
				n, err := src.StagedBytes()
				if err != nil {
					return -1
				}
				return float64(n)
			}))
	}
	if src.UndeliveredParts != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "parts_undelivered",
			Help: "Parts acknowledged to clients that the storage backend does not hold yet (part-wise uploads)."},
			func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				n, err := src.UndeliveredParts(ctx)
				if err != nil {
					return -1
				}
				return float64(n)
			}))
	}
}

// PartDelivered records a part delivered in the background.
func (m *Metrics) PartDelivered(bytes int64) {
	if m == nil {
		return
	}
	m.parts.delivered.Inc()
	m.parts.deliveredBytes.Add(float64(bytes))
}

// PartDeliveryFailed records a failed background delivery task.
func (m *Metrics) PartDeliveryFailed() {
	if m == nil {
		return
	}
	m.parts.errors.Inc()
}
