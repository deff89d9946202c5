package gateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	"sessiongate.dev/sessiongate/internal/testenv"
)

// targetAddresses are the addresses the target names in its own /api.
func targetAddresses(t *testing.T) []string {
	t.Helper()
	raw, err := target.Kube.Discovery().RESTClient().Get().AbsPath("/api").SetHeader("Accept", "application/json").DoRaw(context.Background())
	testenv.Must(t, err)
	var v metav1.APIVersions
	testenv.Must(t, json.Unmarshal(raw, &v))
	var out []string
	for _, a := range v.ServerAddressByClientCIDRs {
		out = append(out, a.ServerAddress)
	}
	if len(out) == 0 {
		t.Fatalf("the target names no address in /api, so this test could not fail: %s", raw)
	}
	return out
}

func TestDiscoveryNamesTheGatewayNotTheTarget(t *testing.T) {
	session(t, "discovery", "alice@example.com")
	internal := targetAddresses(t)
	gw := replicas[0].Addr()
	cfg := restConfig(0, "discovery", token(t, "alice@example.com"))
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	testenv.Must(t, err)

	// Go's transport asks for gzip on each of these, as every client-go
	// client does.
	for _, path := range []string{"/api", "/apis"} {
		for _, accept := range []string{"application/json", "application/vnd.kubernetes.protobuf", ""} {
			raw, err := dc.RESTClient().Get().AbsPath(path).SetHeader("Accept", accept).DoRaw(context.Background())
			if err != nil {
				t.Fatalf("GET %s (%s): %v", path, accept, err)
			}
			for _, a := range internal {
				if strings.Contains(string(raw), a) {
					t.Errorf("GET %s (%s) names the target's address %s", path, accept, a)
				}
			}
			// kube-apiserver names itself in /api; its /apis (served by the
			// aggregator) names no address, and must not gain the target's.
			if path == "/api" && !strings.Contains(string(raw), gw) {
				t.Errorf("GET %s (%s) does not name the gateway %s: %q", path, accept, gw, raw)
			}
		}
	}

	var v metav1.APIVersions
	testenv.Must(t, dc.RESTClient().Get().AbsPath("/api").Do(context.Background()).Into(&v))
	if a := v.ServerAddressByClientCIDRs; len(a) != 1 || a[0].ServerAddress != gw || a[0].ClientCIDR != "0.0.0.0/0" {
		t.Errorf("client-go reads /api as naming %+v, want the gateway %s for every client", a, gw)
	}
	dc.UseLegacyDiscovery = true
	groups, err := dc.ServerGroups()
	testenv.Must(t, err)
	for _, g := range groups.Groups {
		for _, a := range g.ServerAddressByClientCIDRs {
			if a.ServerAddress != gw {
				t.Errorf("client-go discovery: group %q names %s, want the gateway %s", g.Name, a.ServerAddress, gw)
			}
		}
	}
	// Aggregated discovery, what kubectl uses, still works through the gateway.
	dc, err = discovery.NewDiscoveryClientForConfig(cfg)
	testenv.Must(t, err)
	if _, _, err := dc.ServerGroupsAndResources(); err != nil {
		t.Errorf("aggregated discovery through the gateway: %v", err)
	}
}
