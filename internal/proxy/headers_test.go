package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// sanitized is what the target gets of the caller's headers for a session
// without a bearer token.
func sanitized(in http.Header) http.Header {
	out := in.Clone()
	asSession(out, in, "")
	return out
}

// The session's token is the only credential the target gets, however the
// caller spelled its own.
func TestTheSessionsTokenIsTheOnlyCredential(t *testing.T) {
	in := http.Header{"Authorization": {"Bearer caller"}, "authorization": {"Bearer lower"}, "AUTHORIZATION": {"Bearer upper"}}
	out := in.Clone()
	asSession(out, in, "session")
	if len(out) != 1 || len(out["Authorization"]) != 1 || out.Get("Authorization") != "Bearer session" {
		t.Errorf("the target gets %v, want only Authorization: Bearer session", out)
	}
}

func TestSanitizeDropsCredentialsIdentityAndHopByHopHeaders(t *testing.T) {
	in := http.Header{
		"Authorization":            {"Bearer caller"},
		"Proxy-Authorization":      {"Basic x"},
		"Cookie":                   {"sso=caller-session"},
		"cookie":                   {"lower=case"},
		"Impersonate-User":         {"system:admin"},
		"Impersonate-Extra-Scopes": {"all"},
		"X-Remote-User":            {"system:admin"},
		"X-Remote-Group":           {"system:masters"},
		"X-Remote-Extra-Scopes":    {"all"},
		"x-remote-user":            {"lower case, set directly in the map"},
		"X_remote_group":           {"underscores"},
		"Connection":               {"Upgrade, X-Smuggled"},
		"X-Smuggled":               {"yes"},
		"Upgrade":                  {"websocket"},
		"Sec-Websocket-Protocol":   {"v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.dG9rZW4", "v4.channel.k8s.io"},
		"Accept":                   {"application/json"},
		"X-Remote-Userish":         {"not a front-proxy header"},
		"X-Forwarded-For":          {"10.1.2.3"},
		"X-Forwarded-Host":         {"trusted.example.com"},
		"X_forwarded_proto":        {"https"},
		"Forwarded":                {"for=10.1.2.3"},
		"X-Real-Ip":                {"10.1.2.3"},
	}
	out := sanitized(in)
	for k := range out {
		switch strings.ToLower(strings.ReplaceAll(k, "_", "-")) {
		case "authorization", "proxy-authorization", "cookie", "impersonate-user", "impersonate-extra-scopes",
			"x-remote-user", "x-remote-group", "x-remote-extra-scopes", "x-smuggled",
			"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "forwarded", "x-real-ip":
			t.Errorf("%s was forwarded", k)
		}
	}
	if got := out.Get("Sec-WebSocket-Protocol"); got != "v5.channel.k8s.io, v4.channel.k8s.io" {
		t.Errorf("Sec-WebSocket-Protocol = %q, want the stream protocols without the bearer token", got)
	}
	for _, k := range []string{"Accept", "Upgrade", "Connection", "X-Remote-Userish"} {
		if out.Get(k) == "" {
			t.Errorf("%s was dropped", k)
		}
	}
	if in.Get("Authorization") == "" || len(in.Values("Sec-Websocket-Protocol")) != 2 {
		t.Error("sanitize changed the caller's request")
	}
}

func TestStripBearerProtocol(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{"v5.channel.k8s.io"}, []string{"v5.channel.k8s.io"}},
		{[]string{"base64url.bearer.authorization.k8s.io.dG9rZW4,v5.channel.k8s.io"}, []string{"v5.channel.k8s.io"}},
		{[]string{"BASE64URL.Bearer.Authorization.K8S.IO.dG9rZW4", "v4.channel.k8s.io"}, []string{"v4.channel.k8s.io"}},
		{[]string{"base64url.bearer.authorization.k8s.io.a", "base64url.bearer.authorization.k8s.io.b"}, nil},
		{[]string{"base64url.bearer.authorization.k8s.io.dG9rZW4"}, nil},
	} {
		h := http.Header{}
		for _, v := range c.in {
			h.Add("Sec-WebSocket-Protocol", v)
		}
		stripBearerProtocol(h)
		if got := h.Values("Sec-WebSocket-Protocol"); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

func TestImpersonationIsRefused(t *testing.T) {
	for _, c := range []struct {
		header  string
		refused bool
	}{
		{"Impersonate-User", true},
		{"Impersonate-Group", true},
		{"Impersonate-Uid", true},
		{"Impersonate-Extra-Scopes", true},
		{"impersonate-user", true},
		{"Impersonate_User", true},
		{"X-Impersonate-User", false},
		{"Accept", false},
	} {
		err := refuseImpersonation(http.Header{c.header: {"system:admin"}})
		if (err != nil) != c.refused {
			t.Errorf("%s: refused = %v, want %v", c.header, err != nil, c.refused)
			continue
		}
		if err != nil && (err.ErrStatus.Code != http.StatusForbidden || !strings.Contains(err.ErrStatus.Message, "impersonation through a session is not supported")) {
			t.Errorf("%s: %+v, want a 403 that says impersonation is not supported", c.header, err.ErrStatus)
		}
	}
}

// FuzzSanitize: whatever the caller sends, no credential, impersonation or
// front-proxy identity reaches the target.
func FuzzSanitize(f *testing.F) {
	f.Add("Sec-WebSocket-Protocol", "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.dG9rZW4", "X-Remote-User")
	f.Add("Connection", "keep-alive, Impersonate-User", "Impersonate-Group")
	f.Fuzz(func(t *testing.T, key, value, other string) {
		in := http.Header{key: {value}, other: {value}, "Connection": {value}, "Sec-WebSocket-Protocol": {value}}
		out := sanitized(in)
		for k, vs := range out {
			if isImpersonation(k) || isRemoteIdentity(k) || http.CanonicalHeaderKey(k) == "Authorization" {
				t.Fatalf("%q forwarded", k)
			}
			if http.CanonicalHeaderKey(k) == "Sec-Websocket-Protocol" {
				for _, v := range vs {
					if strings.Contains(strings.ToLower(v), bearerProtocolPrefix) {
						t.Fatalf("bearer subprotocol forwarded: %q", v)
					}
				}
			}
		}
	})
}

func TestSanitizeMatchesNonCanonicalNames(t *testing.T) {
	out := sanitized(http.Header{"authorization": {"Bearer caller"}, "impersonate-user": {"x"}, "sec-websocket-protocol": {"base64url.bearer.authorization.k8s.io.dG9rZW4, v5.channel.k8s.io"}})
	if len(out) != 1 || out.Get("Sec-WebSocket-Protocol") != "v5.channel.k8s.io" {
		t.Errorf("got %v", out)
	}
}
