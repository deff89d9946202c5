package controlplane

import "testing"

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
