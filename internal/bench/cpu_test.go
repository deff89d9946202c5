package bench

import (
	"crypto/sha256"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestStatTimesReadsTheFieldsAfterTheCommandName(t *testing.T) {
	// A command name may hold spaces and brackets of its own.
	line := "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 731 254 0 0 20 0 9 0 1000 0 0\n"
	user, kernel, err := statTimes([]byte(line))
	if err != nil || user != 7310*time.Millisecond || kernel != 2540*time.Millisecond {
		t.Fatalf("got %v user, %v kernel, %v; want 7.31s, 2.54s", user, kernel, err)
	}
	for _, bad := range []string{"", "4242 no brackets S 1", "4242 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 -5 254 0"} {
		if _, _, err := statTimes([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// Work in the process's own code shows as user time, system calls as
// kernel time.
func TestProcessTicksTellUserFromKernelTime(t *testing.T) {
	pid := os.Getpid()
	measure := func(work func()) (user, kernel time.Duration) {
		u0, k0, err := processTicks(pid)
		if err != nil {
			t.Fatal(err)
		}
		// Until the process has used 300 ms of CPU, however busy the
		// machine is.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			for range 1000 {
				work()
			}
			u1, k1, err := processTicks(pid)
			if err != nil {
				t.Fatal(err)
			}
			if user, kernel = u1-u0, k1-k0; user+kernel >= 300*time.Millisecond {
				return user, kernel
			}
		}
		t.Fatalf("the process used only %v user and %v kernel time in a minute", user, kernel)
		return 0, 0
	}
	sum := make([]byte, 64<<10)
	u, k := measure(func() { sha256.Sum256(sum) })
	if k > u/2 {
		t.Errorf("hashing: %v user, %v kernel; want mostly user", u, k)
	}
	// The kernel clears what is read from /dev/zero.
	zero, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer zero.Close()
	u, k = measure(func() { _, _ = zero.Read(sum) })
	if k < u {
		t.Errorf("reading /dev/zero: %v user, %v kernel; want mostly kernel", u, k)
	}
}

// Each time a thread of the process blocks and is woken counts once: a
// goroutine locked to its own thread waits on a channel for each of 50
// pings, so its thread sleeps and is woken for each.
func TestProcessWakeupsCountsEveryBlockedThread(t *testing.T) {
	before, err := processWakeups(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	const pings = 50
	ping, pong := make(chan struct{}), make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for range ping {
			pong <- struct{}{}
		}
	}()
	for range pings {
		ping <- struct{}{}
		<-pong
	}
	close(ping)
	after, err := processWakeups(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The process's other threads wake for a few reasons of their own,
	// not thousands.
	if n := after - before; n < pings || n > 50*pings {
		t.Errorf("%d pings, but the threads were woken %d times", pings, n)
	}
}

func TestVoluntarySwitchesAreReadFromTheirLine(t *testing.T) {
	status := "Name:\tsessiongate\nvoluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t99\n"
	if n, err := voluntarySwitches([]byte(status)); n != 1234 || err != nil {
		t.Errorf("got %d, %v; want 1234", n, err)
	}
	for _, bad := range []string{"", "nonvoluntary_ctxt_switches:\t99\n", "voluntary_ctxt_switches:\tmany\n"} {
		if _, err := voluntarySwitches([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
