package proxy

import (
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bearerProtocolPrefix marks a bearer token carried as a WebSocket
// subprotocol, the way browsers (which cannot set Authorization on a
// WebSocket) authenticate to kube-apiserver.
const bearerProtocolPrefix = "base64url.bearer.authorization.k8s.io."

// headerName folds a header name for matching: case-insensitive, and with
// underscores read as dashes, since some proxies in front of a target make
// X_Remote_User into X-Remote-User.
func headerName(k string) string {
	return strings.ReplaceAll(strings.ToLower(k), "_", "-")
}

// isImpersonation says whether a header asks the target to impersonate
// someone: Impersonate-User, -Group, -Uid and -Extra-*.
func isImpersonation(k string) bool {
	return strings.HasPrefix(headerName(k), "impersonate-")
}

// isRemoteIdentity says whether a header is one an authenticating front
// proxy uses to name the user (kube-apiserver's --requestheader-* defaults).
func isRemoteIdentity(k string) bool {
	switch n := headerName(k); {
	case n == "x-remote-user", n == "x-remote-group", strings.HasPrefix(n, "x-remote-extra-"):
		return true
	}
	return false
}

// refuseImpersonation answers a request that asks for impersonation. Dropping
// the header silently would answer the caller's question for the wrong user:
// `kubectl auth can-i --as=X` would say what the session may do, not X.
func refuseImpersonation(h http.Header) *apierrors.StatusError {
	for k := range h {
		if isImpersonation(k) {
			return &apierrors.StatusError{ErrStatus: metav1.Status{
				Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
				Message: "impersonation through a session is not supported: the session acts only as its own identity " +
					"(drop --as, --as-group and --as-uid, or the Impersonate-* headers)",
			}}
		}
	}
	return nil
}

// sanitize copies the caller's headers without its credentials (the
// Authorization header, a bearer token offered as a WebSocket subprotocol),
// any impersonation or front-proxy identity, and hop-by-hop headers other
// than the upgrade itself.
func sanitize(in http.Header) http.Header {
	out := in.Clone()
	for k := range out {
		switch n := headerName(k); {
		case n == "authorization", n == "proxy-authorization", isImpersonation(k), isRemoteIdentity(k):
			delete(out, k)
		}
	}
	for _, v := range in.Values("Connection") {
		for _, name := range strings.Split(v, ",") {
			name = strings.TrimSpace(name)
			if name != "" && !strings.EqualFold(name, "upgrade") {
				out.Del(name)
			}
		}
	}
	stripBearerProtocol(out)
	return out
}

// stripBearerProtocol removes base64url.bearer.authorization.k8s.io.*
// from Sec-WebSocket-Protocol and keeps every other subprotocol offered, in
// order, so the target still picks the stream protocol. Header names are
// matched in any case: a map set in code need not be canonical.
func stripBearerProtocol(h http.Header) {
	var kept []string
	found := false
	for k, values := range h {
		if headerName(k) != "sec-websocket-protocol" {
			continue
		}
		for _, v := range values {
			for _, p := range strings.Split(v, ",") {
				p = strings.TrimSpace(p)
				switch {
				case strings.HasPrefix(strings.ToLower(p), bearerProtocolPrefix):
					found = true
				case p != "":
					kept = append(kept, p)
				}
			}
		}
	}
	if !found {
		return
	}
	for k := range h {
		if headerName(k) == "sec-websocket-protocol" {
			delete(h, k)
		}
	}
	if len(kept) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(kept, ", "))
	}
}
