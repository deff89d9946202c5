package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// serveZeros answers each connection on ln: it reads a big-endian uint64 n
// and writes n zero bytes. kwok forwards every pod port here.
func serveZeros(ln net.Listener) {
	zeros := make([]byte, 32<<10)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var n uint64
			if binary.Read(c, binary.BigEndian, &n) != nil {
				return
			}
			for n > 0 {
				k := min(n, uint64(len(zeros)))
				if _, err := c.Write(zeros[:k]); err != nil {
					return
				}
				n -= k
			}
		}()
	}
}

// PortForward streams size bytes from the pod over port-forward's SPDY
// protocol, per path, and the gateway's CPU per MB.
func (e *Env) PortForward(ctx context.Context, size int64, rounds int) ([]Scenario, error) {
	rate := map[string][]float64{}
	cpu := map[string]usage{}
	for r := range rounds {
		for _, p := range e.paths(r) {
			var d time.Duration
			if err := e.measureCPU(p, cpu, func() error {
				t := time.Now()
				err := forwardOnce(ctx, p, size)
				d = time.Since(t)
				return err
			}); err != nil {
				return nil, fmt.Errorf("%s port-forward: %w", p.Name, err)
			}
			rate[p.Name] = append(rate[p.Name], float64(size)/1e6/d.Seconds())
		}
	}
	return streamScenarios(fmt.Sprintf("port-forward stream, %d MiB", size>>20), rate, cpu, float64(rounds)*float64(size)/1e6), nil
}

// forwardOnce opens one port-forward connection to pod web and reads size
// bytes through it, as kubectl port-forward's client does, without its
// local listener.
func forwardOnce(ctx context.Context, p *Path, size int64) error {
	rt, upgrader, err := spdy.RoundTripperFor(p.Config)
	if err != nil {
		return err
	}
	u, err := urlOf(p.URL("/api/v1/namespaces/demo/pods/web/portforward"))
	if err != nil {
		return err
	}
	conn, _, err := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u).Dial(portforward.PortForwardProtocolV1Name)
	if err != nil {
		return err
	}
	defer conn.Close()
	h := http.Header{}
	h.Set(corev1.StreamType, corev1.StreamTypeError)
	h.Set(corev1.PortHeader, "80")
	h.Set(corev1.PortForwardRequestIDHeader, "0")
	errStream, err := conn.CreateStream(h)
	if err != nil {
		return err
	}
	errStream.Close() // nothing to say on it; the server may write
	h.Set(corev1.StreamType, corev1.StreamTypeData)
	data, err := conn.CreateStream(h)
	if err != nil {
		return err
	}
	if err := binary.Write(data, binary.BigEndian, uint64(size)); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		n, err := io.Copy(io.Discard, io.LimitReader(data, size))
		if err == nil && n != size {
			err = fmt.Errorf("got %d bytes, want %d", n, size)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("%s bytes not through in 2 minutes", strconv.FormatInt(size, 10))
	}
}
