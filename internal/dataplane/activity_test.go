package dataplane

import (
	"context"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/cert"

	"sessiongate.dev/sessiongate/internal/registry"
)

// The reporter looks through the registry four times a second on every
// replica: with 10,000 sessions and none due, a look allocates nothing (it
// used to copy every session and build a set of them, megabytes a second of
// garbage on an idle replica).
func TestLookingForDueSessionsCostsNothingWhileNoneIsDue(t *testing.T) {
	ca, _, err := cert.GenerateSelfSignedCertKey("127.0.0.1", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := registry.NewBackend(registry.BackendConfig{Server: "https://127.0.0.1:6443", CA: ca, Token: "t", Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(nil)
	exp := time.Now().Add(time.Hour)
	for i := range 10000 {
		s := &registry.Session{Name: "s" + strconv.Itoa(i), UID: types.UID(strconv.Itoa(i)), ExpiresAt: exp}
		if i%2 == 0 {
			s.IdleTimeout = time.Hour
		}
		reg.Put(s, b)
	}
	t.Cleanup(func() {
		for i := range 10000 {
			reg.Remove("s"+strconv.Itoa(i), context.Canceled)
		}
	})
	a := &ActivityReporter{Registry: reg, Interval: time.Minute, reported: map[types.UID]report{}}
	// One session was used and reported a moment ago: it is not due again
	// within the interval, and stays remembered.
	used, _ := reg.Get("s0")
	used.Touch(time.Now())
	a.reported[used.UID] = report{activity: used.LastActivity(), at: time.Now()}

	if n := testing.AllocsPerRun(20, func() { a.report(context.Background(), time.Now()) }); n != 0 {
		t.Errorf("a look through 10,000 sessions, none due, allocates %v times", n)
	}
	if _, ok := a.reported[used.UID]; !ok {
		t.Errorf("the reporter forgot a session that is still registered")
	}
	reg.Remove("s0", context.Canceled)
	a.report(context.Background(), time.Now())
	if len(a.reported) != 0 {
		t.Errorf("the reporter still remembers %d session(s) that left", len(a.reported))
	}
}
