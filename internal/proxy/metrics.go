package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"sessiongate.dev/sessiongate/internal/registry"
)

// Metrics of the data plane, registered with controller-runtime's registry so
// they are served on the manager's metrics endpoint.
var (
	activeSessions = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sessiongate_active_sessions",
		Help: "Sessions registered on this replica.",
	})
	// The session label is only ever a session resolved for its caller, and
	// its series go when the session leaves the registry: a caller can no
	// more grow this than it can create sessions.
	requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sessiongate_requests_total",
		Help: "Requests to session endpoints by session and response code, for sessions this replica serves.",
	}, []string{"session", "code"})
	refusedRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sessiongate_refused_requests_total",
		Help: "Requests refused before a session was resolved for the caller (bad path, failed authentication, no such session of theirs), by response code.",
	}, []string{"code"})
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
	metrics.Registry.MustRegister(activeSessions, requests, refusedRequests, upstreamLatency, openStreams, connectionsCut)
}

// ForgetSession drops the named session's series; the registry calls it when
// the session leaves (registry.Registry.OnRemove).
func ForgetSession(name string) {
	requests.DeletePartialMatch(prometheus.Labels{"session": name})
}

// countSessionRequest counts a request of a resolved session. A request that
// outlives its session (a watch or exec cut when it ended) finishes after
// the registry forgot the session's series; forgetting them again keeps it
// from bringing them back for good. The session is cancelled before the
// registry forgets it, so one of the two always runs after the increment.
func countSessionRequest(s *registry.Session, code int) {
	requests.WithLabelValues(s.Name, strconv.Itoa(code)).Inc()
	if s.Context().Err() != nil {
		ForgetSession(s.Name)
	}
}

// SetActiveSessions records how many sessions are registered.
func SetActiveSessions(n int) { activeSessions.Set(float64(n)) }
