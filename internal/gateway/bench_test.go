package gateway_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkProxyGET is for profiling the hot path in-process
// (go test -bench ProxyGET -cpuprofile); `make bench` is where figures come from.
func BenchmarkProxyGET(b *testing.B) {
	name := "bench-get-" + strconv.Itoa(b.N)
	session(b, name, "alice@example.com")
	c := gatewayClient()
	tok := token(b, "alice@example.com")
	url := "https://" + replicas[0].Addr() + "/sessiongate/" + name + "/kas/api/v1/namespaces/demo/pods/web"
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
