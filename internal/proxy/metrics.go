package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics of the data plane, registered with controller-runtime's registry so
// they are served on the manager's metrics endpoint.
var (
	activeSessions = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sessiongate_active_sessions",
		Help: "Sessions registered on this replica.",
	})
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sessiongate_requests_total",
		Help: "Requests to session endpoints by session and response code.",
	}, []string{"session", "code"})
	upstreamLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sessiongate_upstream_latency_seconds",
		Help:    "Time from sending a request to the target to its response headers.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"cluster"})
	openStreams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sessiongate_open_streams",
		Help: "Open upgraded streams (exec, attach, port-forward) and watches.",
	})
	connectionsCut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sessiongate_connections_cut_total",
		Help: "Live connections cut because their session ended.",
	})
)

func init() {
	metrics.Registry.MustRegister(activeSessions, requests, upstreamLatency, openStreams, connectionsCut)
}

// SetActiveSessions records how many sessions are registered.
func SetActiveSessions(n int) { activeSessions.Set(float64(n)) }
