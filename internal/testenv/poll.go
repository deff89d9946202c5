package testenv

import (
	"testing"
	"time"
)

// Eventually polls f every 100ms until it returns nil, and fails the test with
// f's last error when within has passed. Tests synchronise with it, never with
// sleeps.
func Eventually(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	var err error
	if !poll(within, func() bool { err = f(); return err == nil }) {
		t.Fatalf("still failing after %s: %v", within, err)
	}
}

// Holds checks f every 100ms for the whole of within, and fails the test as
// soon as it returns an error. It asserts that something that would happen at
// once if it happened at all (an event delivered in process) does not; it is
// no way to wait for anything.
func Holds(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	var err error
	if poll(within, func() bool { err = f(); return err != nil }) {
		t.Fatal(err)
	}
}

// poll calls done every 100ms until it returns true, which poll returns, or
// within has passed.
func poll(within time.Duration, done func() bool) bool {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

// Must fails the test on a non-nil error.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
