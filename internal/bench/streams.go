package bench

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/tools/remotecommand"
)

func execURL(p *Path, command ...string) string {
	q := "stdout=true&container=main"
	for _, c := range command {
		q += "&command=" + url.QueryEscape(c)
	}
	return p.URL("/api/v1/namespaces/demo/pods/web/exec?" + q)
}

// Payloads of the exec stream: zeros are the recorder's worst case (JSON
// writes each NUL as six bytes), lines of text what a terminal mostly
// carries.
const (
	Zeros = "zeros"
	Text  = "text"
)

// textLine is the text payload's line, as `ls -l` would print it.
const textLine = "drwxr-xr-x 2 root root 4096 Dec  5 16:11 sessiongate-0.log"

// ExecThroughput streams size bytes of payload on stdout over exec's
// WebSocket protocol, through the gateway with and without recording.
func (e *Env) ExecThroughput(ctx context.Context, payload string, size int64, rounds int) ([]Scenario, error) {
	name := fmt.Sprintf("exec stdout stream, %d MiB of %s", size>>20, payload)
	command := []string{"head", "-c", strconv.FormatInt(size, 10), "/dev/zero"}
	if payload == Text {
		command = []string{"sh", "-c", fmt.Sprintf("yes '%s' | head -c %d", textLine, size)}
	}
	rate := map[string][]float64{}
	cpu := map[string]usage{}
	for r := range rounds {
		for _, p := range e.streamPaths(r) {
			u, err := urlOf(execURL(p, command...))
			if err != nil {
				return nil, err
			}
			ex, err := remotecommand.NewWebSocketExecutor(p.Config, "GET", u.String())
			if err != nil {
				return nil, err
			}
			var n countingWriter
			var d time.Duration
			if err := e.measureCPU(p, cpu, func() error {
				t := time.Now()
				err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &n})
				d = time.Since(t)
				return err
			}); err != nil {
				return nil, fmt.Errorf("%s exec: %w", p.Name, err)
			}
			if n.n != size {
				return nil, fmt.Errorf("%s exec: got %d bytes, want %d", p.Name, n.n, size)
			}
			rate[p.Name] = append(rate[p.Name], float64(size)/1e6/d.Seconds())
			// A cast of zeros is six times the stream: keep the disk.
			casts, _ := filepath.Glob(filepath.Join(e.dir, "recordings", "*.cast"))
			for _, c := range casts {
				_ = os.Remove(c)
			}
		}
	}
	return streamScenarios(name, rate, cpu, float64(rounds)*float64(size)/1e6), nil
}

// streamScenarios are the median throughput of each path, gateway/direct
// and unrecorded/recorded over the rounds, and the gateway's CPU per MB.
func streamScenarios(name string, rate map[string][]float64, cpu map[string]usage, mb float64) []Scenario {
	bw := Scenario{Name: name, Unit: "MB/s", Metric: "throughput", ByPath: map[string]float64{},
		Spread: spreadOf(rate["gateway"], rate["direct"])}
	for path, rs := range rate {
		bw.ByPath[path] = median(rs)
	}
	out := []Scenario{bw, cpuScenario(name, "MB", cpu, "gateway", mb).withProxy(cpu, mb)}
	if u, ok := rate[unrecorded]; ok {
		out = append(out, Scenario{Name: name, Unit: "ratio", Metric: "recorded/unrecorded throughput",
			ByPath: map[string]float64{"gateway": bw.ByPath["gateway"] / median(u)}, Spread: spreadOf(rate["gateway"], u)},
			cpuScenario(name+", unrecorded", "MB", cpu, unrecorded, mb))
	}
	return out
}

// ExecEcho measures keystroke round trips through `cat` over exec: one
// byte written to stdin, timed until it is back on stdout.
func (e *Env) ExecEcho(ctx context.Context, keystrokes, rounds int) ([]Scenario, error) {
	lat := map[string][]time.Duration{}
	roundP50 := map[string][]float64{}
	for r := range rounds {
		for _, p := range e.streamPaths(r) {
			ds, err := echo(ctx, p, keystrokes/rounds)
			if err != nil {
				return nil, err
			}
			lat[p.Name] = append(lat[p.Name], ds...)
			roundP50[p.Name] = append(roundP50[p.Name], ms(percentile(ds, 50)))
		}
	}
	p50 := Scenario{Name: "exec keystroke echo", Unit: "ms", Metric: "p50", ByPath: map[string]float64{},
		Spread: spreadOf(roundP50["gateway"], roundP50["direct"])}
	p99 := Scenario{Name: p50.Name, Unit: "ms", Metric: "p99", ByPath: map[string]float64{}}
	for path, ds := range lat {
		p50.ByPath[path] = ms(percentile(ds, 50))
		p99.ByPath[path] = ms(percentile(ds, 99))
	}
	added := Scenario{Name: p50.Name, Unit: "ratio", Metric: "recorded/unrecorded p50",
		ByPath: map[string]float64{"gateway": p50.ByPath["gateway"] / p50.ByPath[unrecorded]},
		Spread: spreadOf(roundP50["gateway"], roundP50[unrecorded])}
	return []Scenario{p50, p99, added}, nil
}

// echo opens a byte-for-byte echo on p and times n keystrokes after a few
// to warm up. The echo is dd, one byte per read and write as cat would,
// but it ends once it has echoed them all: kwok never ends a command's
// stdin (it copies the stream into the process's pipe and does not close
// it), so a cat would outlive the caller's stdin and have to be cut.
func echo(ctx context.Context, p *Path, n int) ([]time.Duration, error) {
	const warm = 5 // the first few warm the stream up
	u, err := urlOf(execURL(p, "dd", "bs=1", "count="+strconv.Itoa(n+warm), "status=none") + "&stdin=true")
	if err != nil {
		return nil, err
	}
	ex, err := remotecommand.NewWebSocketExecutor(p.Config, "GET", u.String())
	if err != nil {
		return nil, err
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		err := ex.StreamWithContext(sctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW})
		// A stream that ended early ends the loop below too.
		inR.Close()
		outW.CloseWithError(err)
		done <- err
	}()
	defer inW.Close()
	type result struct {
		ds  []time.Duration
		err error
	}
	loop := make(chan result, 1)
	go func() {
		var ds []time.Duration
		buf := make([]byte, 1)
		for i := range n + warm {
			t := time.Now()
			if _, err := inW.Write([]byte("a")); err != nil {
				loop <- result{err: err}
				return
			}
			if i == n+warm-1 {
				inW.Close() // the caller's stdin ends with its last keystroke
			}
			if _, err := io.ReadFull(outR, buf); err != nil {
				loop <- result{err: err}
				return
			}
			if i >= warm {
				ds = append(ds, time.Since(t))
			}
		}
		loop <- result{ds: ds}
	}()
	var res result
	select {
	case res = <-loop:
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%s echo: no echo within 60s", p.Name)
	}
	if res.err != nil {
		if err := <-done; err != nil {
			return nil, fmt.Errorf("%s echo: the stream ended early: %w", p.Name, err)
		}
		return nil, fmt.Errorf("%s echo: the stream ended before %d echoes: %w", p.Name, n+warm, res.err)
	}
	// dd has echoed its last byte: it exits, and the stream ends with it.
	select {
	case err := <-done:
		if err != nil {
			return nil, fmt.Errorf("%s echo: the stream ended with %w", p.Name, err)
		}
		return res.ds, nil
	case <-time.After(10 * time.Second):
		return nil, fmt.Errorf("%s echo: the stream went on after its last echo", p.Name)
	}
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }
