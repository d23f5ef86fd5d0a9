package renewal

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ExpiryMetric is the gauge the agent exposes for every certificate it manages or watches.
const ExpiryMetric = "kubeup_certificate_expiry_timestamp_seconds"

// Metrics holds the agent's certificate metrics in a registry of their own (nothing else of
// the process is exposed).
type Metrics struct {
	reg    *prometheus.Registry
	expiry *prometheus.GaugeVec
}

// NewMetrics makes an empty set of certificate metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: ExpiryMetric,
			Help: "When the certificate expires (its NotAfter), in seconds since the epoch.",
		}, []string{"name", "machine"}),
	}
	m.reg.MustRegister(m.expiry)
	return m
}

// Set replaces the machine's figures with certs'.
func (m *Metrics) Set(machine string, certs []Cert) {
	m.expiry.Reset()
	for _, c := range certs {
		m.expiry.WithLabelValues(c.Name, machine).Set(float64(c.Cert.NotAfter.Unix()))
	}
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
