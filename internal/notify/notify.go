// Package notify delivers the lifecycle events of sessions — requested,
// approved, rejected, activated, expiring soon, expired, terminated — to the
// sinks an AccessPolicy names: a generic JSON webhook signed with
// HMAC-SHA256, or a Slack-compatible incoming webhook.
//
// Delivery never blocks the caller: events wait in a bounded queue, workers
// retry failed deliveries with exponential backoff, and what still fails (or
// finds the queue full) is counted in sessiongate_notifications_total and
// handed to OnFailure, which the control plane turns into a Kubernetes Event.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// EventType names a lifecycle event.
type EventType string

const (
	Requested    EventType = "session.requested"
	Approved     EventType = "session.approved"
	Rejected     EventType = "session.rejected"
	Activated    EventType = "session.activated"
	ExpiringSoon EventType = "session.expiring-soon"
	Expired      EventType = "session.expired"
	Terminated   EventType = "session.terminated"
	Failed       EventType = "session.failed"
)

// Event is the JSON body of a Webhook notification.
type Event struct {
	// ID is the same on every delivery attempt of one event, so a receiver
	// can drop duplicates.
	ID        string    `json:"id"`
	Type      EventType `json:"type"`
	Time      time.Time `json:"time"`
	Session   string    `json:"session"`
	Namespace string    `json:"namespace"`
	Cluster   string    `json:"cluster"`
	// Requester asked for the session; empty on the admin path.
	Requester   string     `json:"requester,omitempty"`
	Owner       string     `json:"owner"`
	AccessLevel string     `json:"accessLevel"`
	Policy      string     `json:"policy,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Phase       string     `json:"phase"`
	ExpiresAt   *time.Time `json:"expiresAt,omitempty"`
	// Message is a one-line account of what happened, for people.
	Message string `json:"message"`
}

// Kind is a sink's payload shape.
type Kind string

const (
	Webhook Kind = "Webhook"
	Slack   Kind = "Slack"
)

// Sink is one receiver, with its secrets already read.
type Sink struct {
	Kind Kind
	// URL is https://; it is a credential and never logged.
	URL string
	// Key signs Webhook bodies.
	Key []byte
	// CA verifies the receiver; nil means system roots.
	CA []byte
	// Name says which sink this is in logs, metrics-free (e.g. the policy
	// and index), never the URL.
	Name string
}

// MinKeyLength is the shortest HMAC key accepted.
const MinKeyLength = 32

// Check reports what is wrong with a sink, in words for an operator.
func (s Sink) Check() error {
	switch s.Kind {
	case Webhook:
		if len(s.Key) < MinKeyLength {
			return fmt.Errorf("the signing key must be at least %d bytes", MinKeyLength)
		}
	case Slack:
	default:
		return fmt.Errorf("unknown kind %q", s.Kind)
	}
	if !strings.HasPrefix(s.URL, "https://") {
		return errors.New("the URL must be https://")
	}
	if len(s.CA) > 0 && !x509.NewCertPool().AppendCertsFromPEM(s.CA) {
		return errors.New("caBundle holds no PEM certificate")
	}
	return nil
}

// Failure is a delivery that did not happen.
type Failure struct {
	Event Event
	Sink  string
	Err   error
	// Subject is what the caller passed to Send with the event.
	Subject any
}

// Options tune a Notifier; zero values take the defaults.
type Options struct {
	// QueueSize bounds the events waiting for delivery (default 1024).
	QueueSize int
	// Attempts per delivery (default 5).
	Attempts int
	// Backoff before the second attempt, doubling after (default 1s).
	Backoff time.Duration
	// Timeout of one attempt (default 10s).
	Timeout time.Duration
	// Workers deliver concurrently (default 2).
	Workers int
	// OnFailure is called once per delivery given up on, from a worker.
	OnFailure func(Failure)
}

// Notifier queues events and delivers them.
type Notifier struct {
	opts  Options
	queue chan job

	mu      sync.Mutex
	clients map[string]*http.Client // by CA bundle
}

type job struct {
	ev      Event
	sink    Sink
	subject any
}

var deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "sessiongate_notifications_total",
	Help: "Notification deliveries by sink kind, event type and result (delivered, failed, dropped when the queue was full).",
}, []string{"kind", "event", "result"})

func init() { metrics.Registry.MustRegister(deliveries) }

// New returns a Notifier; Start runs its workers.
func New(opts Options) *Notifier {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1024
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	return &Notifier{opts: opts, queue: make(chan job, opts.QueueSize), clients: map[string]*http.Client{}}
}

// Send queues ev for every sink and returns at once. subject comes back in
// a Failure.
func (n *Notifier) Send(ev Event, sinks []Sink, subject any) {
	for _, s := range sinks {
		select {
		case n.queue <- job{ev: ev, sink: s, subject: subject}:
		default:
			n.failed(job{ev: ev, sink: s, subject: subject}, "dropped", errors.New("the notification queue is full"))
		}
	}
}

// Start delivers until ctx ends; a controller-runtime Runnable.
func (n *Notifier) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for range n.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-n.queue:
					n.deliver(ctx, j)
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

func (n *Notifier) deliver(ctx context.Context, j job) {
	body, err := Payload(j.sink.Kind, j.ev)
	if err != nil {
		n.failed(j, "failed", err)
		return
	}
	backoff := n.opts.Backoff
	for attempt := 1; ; attempt++ {
		retry, err := n.post(ctx, j, body)
		if err == nil {
			deliveries.WithLabelValues(string(j.sink.Kind), string(j.ev.Type), "delivered").Inc()
			klog.V(4).InfoS("Notification delivered", "event", j.ev.Type, "session", j.ev.Session, "sink", j.sink.Name, "attempt", attempt)
			return
		}
		if !retry || attempt == n.opts.Attempts {
			n.failed(j, "failed", fmt.Errorf("after %d attempt(s): %w", attempt, err))
			return
		}
		klog.V(4).InfoS("Notification failed; retrying", "event", j.ev.Type, "session", j.ev.Session, "sink", j.sink.Name, "attempt", attempt, "err", err.Error())
		select {
		case <-ctx.Done():
			n.failed(j, "failed", ctx.Err())
			return
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// post makes one attempt; retry says whether another may succeed.
func (n *Notifier) post(ctx context.Context, j job, body []byte) (retry bool, err error) {
	c, err := n.client(j.sink.CA)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.sink.URL, bytes.NewReader(body))
	if err != nil {
		// The URL itself is a credential: never repeat it.
		return false, errors.New("the sink URL is not a valid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sessiongate")
	if j.sink.Kind == Webhook {
		req.Header.Set("X-Sessiongate-Event", string(j.ev.Type))
		req.Header.Set("X-Sessiongate-Delivery", j.ev.ID)
		req.Header.Set(SignatureHeader, Sign(j.sink.Key, time.Now(), body))
	}
	resp, err := c.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // drop the URL the client error repeats
		}
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("the receiver answered %s", resp.Status)
	default:
		return false, fmt.Errorf("the receiver answered %s", resp.Status)
	}
}

func (n *Notifier) client(ca []byte) (*http.Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.clients[string(ca)]; ok {
		return c, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(ca) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("caBundle holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	c := &http.Client{
		Transport: &http.Transport{TLSClientConfig: cfg, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true},
		// A redirect could carry a signed event somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	n.clients[string(ca)] = c
	return c, nil
}

func (n *Notifier) failed(j job, result string, err error) {
	deliveries.WithLabelValues(string(j.sink.Kind), string(j.ev.Type), result).Inc()
	klog.V(2).InfoS("Notification not delivered", "event", j.ev.Type, "session", j.ev.Session, "sink", j.sink.Name, "err", err.Error())
	if n.opts.OnFailure != nil {
		n.opts.OnFailure(Failure{Event: j.ev, Sink: j.sink.Name, Err: err, Subject: j.subject})
	}
}

// Payload is the body a sink of that kind receives.
func Payload(kind Kind, ev Event) ([]byte, error) {
	switch kind {
	case Webhook:
		return json.Marshal(ev)
	case Slack:
		return json.Marshal(map[string]string{"text": SlackText(ev)})
	}
	return nil, fmt.Errorf("unknown sink kind %q", kind)
}

// SlackText is the message a Slack channel shows.
func SlackText(ev Event) string {
	who := ev.Requester
	if who == "" {
		who = ev.Owner
	}
	return fmt.Sprintf("sessiongate: session *%s* (%s on cluster %s for %s) %s: %s",
		ev.Session, ev.AccessLevel, ev.Cluster, who, strings.TrimPrefix(string(ev.Type), "session."), ev.Message)
}

// SignatureHeader carries a Webhook body's signature:
// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">.
const SignatureHeader = "X-Sessiongate-Signature"

// Sign returns the signature header's value for body at time t.
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify is what a receiver does with a Webhook request: the signature must
// match the body under key, and its timestamp be within tolerance of now, so
// a captured request cannot be replayed later.
func Verify(key []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("malformed " + SignatureHeader)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("signature timestamp is %s away from now, more than %s", d.Round(time.Second), tolerance)
	}
	want := mac(key, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return errors.New("signature does not match the body")
}
