package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/testenv"
)

func get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(metricsPort) + path)
	testenv.Must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthAndMetricsOnTheMetricsPort(t *testing.T) {
	if code, body := get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if code, body := get(t, "/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, body)
		}
		return nil
	})

	s := session(t, "metered", "alice@example.com")
	c := clientset(t, 0, "metered", token(t, "alice@example.com"))
	if _, err := c.CoreV1().Pods("demo").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := c.CoreV1().ConfigMaps("demo").Watch(context.Background(), metav1.ListOptions{})
	testenv.Must(t, err)
	defer w.Stop()

	metric := func(name string) (float64, error) {
		_, body := get(t, "/metrics")
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") && !strings.Contains(name, "{") {
				f := strings.Fields(line)
				return strconv.ParseFloat(f[len(f)-1], 64)
			}
		}
		return 0, fmt.Errorf("metric %s not exported", name)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for name, min := range map[string]float64{
			"sessiongate_active_sessions":                                  1,
			`sessiongate_requests_total{code="200",session="metered"}`:     1,
			`sessiongate_upstream_latency_seconds_count{cluster="target"}`: 1,
			"sessiongate_open_streams":                                     1,
		} {
			v, err := metric(name)
			if err != nil {
				return err
			}
			if v < min {
				return fmt.Errorf("%s = %v, want at least %v", name, v, min)
			}
		}
		return nil
	})

	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Terminated = true
	testenv.Must(t, mgmt.Client.Patch(context.Background(), s, patch))
	testenv.Eventually(t, 30*time.Second, func() error {
		v, err := metric("sessiongate_connections_cut_total")
		if err != nil || v < 1 {
			return fmt.Errorf("connections cut = %v (%v), want at least 1", v, err)
		}
		return nil
	})
}
