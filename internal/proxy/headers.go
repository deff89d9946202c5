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

// nameHasPrefix says whether header name k starts with prefix (lower case,
// dashes) when matched as the target matches names: ASCII case-insensitive,
// and with underscores read as dashes, since some proxies in front of a
// target make X_Remote_User into X-Remote-User. It allocates nothing: it
// runs for every header of every request.
func nameHasPrefix(k, prefix string) bool {
	if len(k) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := k[i]
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// nameIs says whether header name k is name (lower case, dashes), matched
// as nameHasPrefix matches.
func nameIs(k, name string) bool { return len(k) == len(name) && nameHasPrefix(k, name) }

// isImpersonation says whether a header asks the target to impersonate
// someone: Impersonate-User, -Group, -Uid and -Extra-*.
func isImpersonation(k string) bool {
	return nameHasPrefix(k, "impersonate-")
}

// isRemoteIdentity says whether a header is one an authenticating front
// proxy uses to name the user (kube-apiserver's --requestheader-* defaults).
func isRemoteIdentity(k string) bool {
	return nameIs(k, "x-remote-user") || nameIs(k, "x-remote-group") || nameHasPrefix(k, "x-remote-extra-")
}

// isForwarding says whether a header names the client's address or the
// way it came (X-Forwarded-*, Forwarded, X-Real-Ip): the target's audit log
// reads them, so only the gateway may write them.
func isForwarding(k string) bool {
	return nameHasPrefix(k, "x-forwarded-") || nameIs(k, "forwarded") || nameIs(k, "x-real-ip")
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

// asSession makes out, a copy of the caller's headers in, what the target
// gets on either path: without the caller's credentials (the Authorization
// header, cookies, a bearer token offered as a WebSocket subprotocol), any
// impersonation or front-proxy identity, any forwarding header, and
// hop-by-hop headers other than the upgrade itself; with the session's
// token (if it has one) as the only credential.
func asSession(out, in http.Header, token string) {
	scrub(out, in)
	if token != "" {
		out.Set("Authorization", "Bearer "+token)
	}
}

// scrub is asSession without the token.
func scrub(out, in http.Header) {
	for k := range out {
		if nameIs(k, "authorization") || nameIs(k, "proxy-authorization") || nameIs(k, "cookie") || isImpersonation(k) || isRemoteIdentity(k) || isForwarding(k) {
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
}

// stripBearerProtocol removes base64url.bearer.authorization.k8s.io.*
// from Sec-WebSocket-Protocol and keeps every other subprotocol offered, in
// order, so the target still picks the stream protocol. Header names are
// matched in any case: a map set in code need not be canonical.
func stripBearerProtocol(h http.Header) {
	var kept []string
	found := false
	for k, values := range h {
		if !nameIs(k, "sec-websocket-protocol") {
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
		if nameIs(k, "sec-websocket-protocol") {
			delete(h, k)
		}
	}
	if len(kept) > 0 {
		h.Set("Sec-WebSocket-Protocol", strings.Join(kept, ", "))
	}
}
