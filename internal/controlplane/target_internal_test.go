package controlplane

import (
	"testing"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A server is the same however it is spelled, and nothing else is.
func TestSameServer(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://api.example.com:6443", "https://api.example.com:6443/", true},
		{"https://API.example.com:6443", "https://api.example.com:6443", true},
		{"https://api.example.com", "https://api.example.com:443", true},
		{"https://[::1]:6443", "https://[::1]:6443/", true},
		{"https://api.example.com/prefix", "https://api.example.com/prefix/", true},
		{"https://api.example.com:6443", "https://api.example.com:6444", false},
		{"https://api.example.com", "https://api.example.com.evil.io", false},
		{"https://api.example.com/prefix", "https://api.example.com/other", false},
		{"https://api.example.com", "http://api.example.com", false},
		{"https://user@api.example.com", "https://api.example.com", false},
		{"https://api.example.com?x=1", "https://api.example.com", false},
		{"https://api.example.com#f", "https://api.example.com", false},
		{"", "", false},
		{"api.example.com", "api.example.com", false},
	} {
		if got := sameServer(c.a, c.b); got != c.same {
			t.Errorf("sameServer(%q, %q) = %v, want %v", c.a, c.b, got, c.same)
		}
	}
}

// The cluster a kubeconfig's credential is for: its current context's, or
// its only context's, or its only cluster; none when it cannot tell.
func TestCurrentCluster(t *testing.T) {
	ctx := func(cluster string) *clientcmdapi.Context { return &clientcmdapi.Context{Cluster: cluster} }
	two := map[string]*clientcmdapi.Cluster{"a": {}, "b": {}}
	for _, c := range []struct {
		kc   clientcmdapi.Config
		want string
	}{
		{clientcmdapi.Config{CurrentContext: "x", Contexts: map[string]*clientcmdapi.Context{"x": ctx("b"), "y": ctx("a")}, Clusters: two}, "b"},
		{clientcmdapi.Config{Contexts: map[string]*clientcmdapi.Context{"y": ctx("a")}, Clusters: two}, "a"},
		{clientcmdapi.Config{CurrentContext: "gone", Contexts: map[string]*clientcmdapi.Context{"y": ctx("a")}, Clusters: two}, "a"},
		{clientcmdapi.Config{Clusters: map[string]*clientcmdapi.Cluster{"only": {}}}, "only"},
		{clientcmdapi.Config{Contexts: map[string]*clientcmdapi.Context{"x": ctx("a"), "y": ctx("b")}, Clusters: two}, ""},
		{clientcmdapi.Config{Clusters: two}, ""},
	} {
		if got := CurrentCluster(&c.kc); got != c.want {
			t.Errorf("CurrentCluster(%+v) = %q, want %q", c.kc, got, c.want)
		}
	}
}
