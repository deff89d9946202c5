package notify_test

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sessiongate.dev/sessiongate/internal/notify"
)

func TestSinksAreChecked(t *testing.T) {
	key := []byte(strings.Repeat("k", notify.MinKeyLength))
	for name, s := range map[string]notify.Sink{
		"plain http":   {Kind: notify.Webhook, URL: "http://hooks.example.com", Key: key},
		"short key":    {Kind: notify.Webhook, URL: "https://hooks.example.com", Key: []byte("secret")},
		"no key":       {Kind: notify.Webhook, URL: "https://hooks.example.com"},
		"bad CA":       {Kind: notify.Slack, URL: "https://hooks.slack.com/x", CA: []byte("x")},
		"unknown kind": {Kind: "Teams", URL: "https://x"},
	} {
		if err := s.Check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (notify.Sink{Kind: notify.Slack, URL: "https://hooks.slack.com/x"}).Check(); err != nil {
		t.Errorf("a Slack sink: %v", err)
	}
}

// A receiver that refuses (4xx) is not asked again; one that redirects is
// not followed, so a signed event never goes where it was not configured to.
func TestRefusalsAndRedirectsAreNotRetriedOrFollowed(t *testing.T) {
	var refused, redirected, elsewhere atomic.Int32
	other := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			redirected.Add(1)
			http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
			return
		}
		refused.Add(1)
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	failures := make(chan notify.Failure, 4)
	n := notify.New(notify.Options{Attempts: 5, Backoff: time.Millisecond, OnFailure: func(f notify.Failure) { failures <- f }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = n.Start(ctx) }()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	ev := notify.Event{ID: "1", Type: notify.Requested, Session: "s"}
	n.Send(ev, []notify.Sink{
		{Kind: notify.Slack, URL: srv.URL + "/refuse", CA: ca, Name: "refusing"},
		{Kind: notify.Slack, URL: srv.URL + "/redirect", CA: ca, Name: "redirecting"},
	}, "subject")
	for range 2 {
		select {
		case f := <-failures:
			if f.Subject != "subject" || strings.Contains(f.Err.Error(), srv.URL) {
				t.Errorf("failure %+v (an error must not repeat the URL)", f)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no failure reported")
		}
	}
	if refused.Load() != 1 || redirected.Load() != 1 || elsewhere.Load() != 0 {
		t.Errorf("refused asked %d time(s), redirect %d, redirect target %d; want 1, 1, 0", refused.Load(), redirected.Load(), elsewhere.Load())
	}
}

// Send never blocks: with no worker running and the queue full, events are
// dropped and reported.
func TestAFullQueueDropsInsteadOfBlocking(t *testing.T) {
	var dropped atomic.Int32
	n := notify.New(notify.Options{QueueSize: 1, OnFailure: func(f notify.Failure) {
		if strings.Contains(f.Err.Error(), "queue is full") {
			dropped.Add(1)
		}
	}})
	sink := notify.Sink{Kind: notify.Slack, URL: "https://hooks.example.com"}
	for range 3 {
		n.Send(notify.Event{Type: notify.Expired}, []notify.Sink{sink}, nil)
	}
	if dropped.Load() != 2 {
		t.Errorf("%d dropped, want 2", dropped.Load())
	}
}
