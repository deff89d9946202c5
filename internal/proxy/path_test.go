package proxy

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	cases := []struct {
		in, session, api string // api "" means refused
	}{
		{"/sessiongate/s1/kas", "s1", "/"},
		{"/sessiongate/s1/kas/", "s1", "/"},
		{"/sessiongate/s1/kas/api", "s1", "/api"},
		{"/sessiongate/s1/kas/api/v1/namespaces/demo/pods/web/exec", "s1", "/api/v1/namespaces/demo/pods/web/exec"},
		{"/sessiongate/my.session-2/kas/apis/apps/v1/deployments", "my.session-2", "/apis/apps/v1/deployments"},
		{"/sessiongate/s1/kas/api/v1/namespaces/demo/pods/a%3Ab", "s1", "/api/v1/namespaces/demo/pods/a:b"},
		{"/sessiongate/s1/kas/version/", "s1", "/version/"},

		{"/sessiongate/a/kas/../../b/kas/api", "", ""},
		{"/sessiongate/a/kas/%2e%2e/%2e%2e/b/kas/api", "", ""},
		{"/sessiongate/a/kas/%2E%2E/b", "", ""},
		{"/sessiongate/a/kas/./api", "", ""},
		{"/sessiongate/a/kas/api%2fv1", "", ""},
		{"/sessiongate/a/kas/api%2Fv1", "", ""},
		{"/sessiongate/a/kas/api%5cv1", "", ""},
		{"/sessiongate/a/kas//api", "", ""},
		{"/sessiongate/a/kas/api//v1", "", ""},
		{"/sessiongate//kas/api", "", ""},
		{"/sessiongate/A/kas/api", "", ""},
		{"/sessiongate/a%2fb/kas/api", "", ""},
		{"/sessiongate/../b/kas/api", "", ""},
		{"/sessiongate/a/kasx/api", "", ""},
		{"/sessiongate/a/other/api", "", ""},
		{"/sessiongate/a", "", ""},
		{"/sessiongate/", "", ""},
		{"/api/v1/pods", "", ""},
		{"/sessiongate/a/kas/api/%zz", "", ""},
		{"/sessiongate/a/kas/api/%00", "", ""},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			session, api, err := ParsePath(c.in)
			if c.api == "" {
				if err == nil {
					t.Fatalf("accepted: session %q, api %q", session, api)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if session != c.session || api != c.api {
				t.Errorf("got (%q, %q), want (%q, %q)", session, api, c.session, c.api)
			}
		})
	}
}

// FuzzParsePath checks that whatever ParsePath accepts stays inside one
// session: the API path is absolute, has no dot or empty segments, and the
// session name is a plain name.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/sessiongate/a/kas/api", "/sessiongate/a/kas/../../b/kas/api", "/sessiongate/a/kas/%2e%2e", "/sessiongate/a/kas//x", "/sessiongate/a/kas/a%2fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		session, api, err := ParsePath(in)
		if err != nil {
			return
		}
		if session == "" || strings.Contains(session, "..") || strings.ContainsAny(session, "/%\\") {
			t.Fatalf("session %q from %q holds a separator", session, in)
		}
		if !strings.HasPrefix(api, "/") {
			t.Fatalf("api path %q from %q is not absolute", api, in)
		}
		trimmed := strings.TrimSuffix(api[1:], "/")
		if trimmed == "" {
			return
		}
		for _, seg := range strings.Split(trimmed, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00") {
				t.Fatalf("api path %q from %q has segment %q", api, in, seg)
			}
		}
	})
}

// A path that plain passes on as it is reads the same segment by segment:
// the fast path never accepts what the segment-by-segment reading would
// refuse or read otherwise.
func FuzzPlainPathsReadTheSame(f *testing.F) {
	for _, s := range []string{"api/v1/namespaces/demo/pods/web", "", "api/", ".well-known/openid-configuration", "a/./b", "a/../b", "a//b", "a%2fb", "a\\b", "a\x00b", "a/.", "a/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p := "/" + in
		if !plain(p) {
			return
		}
		if got, err := segmented(p); err != nil || got != p {
			t.Fatalf("plain passes %q as it is, but segment by segment it reads %q, %v", p, got, err)
		}
	})
}
