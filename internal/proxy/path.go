package proxy

import (
	"fmt"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Prefix starts every session path: /sessiongate/<session>/kas/<api path>.
const Prefix = "/sessiongate/"

// ParsePath splits an escaped request path into the session name and the API
// path to forward (unescaped, starting with "/"). It refuses anything that
// could reach outside the session's prefix or be read two ways: dot segments,
// empty segments, and encoded slashes or backslashes, raw or percent-encoded.
func ParsePath(escaped string) (session, apiPath string, err error) {
	rest, ok := strings.CutPrefix(escaped, Prefix)
	if !ok {
		return "", "", fmt.Errorf("path must start with %s<session>/kas", Prefix)
	}
	session, rest, _ = strings.Cut(rest, "/")
	if msgs := validation.IsDNS1123Subdomain(session); len(msgs) > 0 {
		return "", "", fmt.Errorf("invalid session name in path: %s", msgs[0])
	}
	switch {
	case rest == "kas":
		return session, "/", nil
	case !strings.HasPrefix(rest, "kas/"):
		return "", "", fmt.Errorf("path must be %s%s/kas/<api path>", Prefix, session)
	}
	p := rest[len("kas"):]
	if plain(p) {
		return session, p, nil
	}
	apiPath, err = segmented(p)
	if err != nil {
		return "", "", err
	}
	return session, apiPath, nil
}

// plain: p (starting with "/") has nothing to unescape and no dot or empty
// segment, so it is its own API path; most paths are.
func plain(p string) bool {
	return !strings.ContainsAny(p, "%\\\x00") && !strings.Contains(p, "//") && !strings.Contains(p, "/.")
}

// segmented unescapes p (starting with "/") segment by segment, refusing
// what could be read two ways.
func segmented(p string) (string, error) {
	segments := strings.Split(p[1:], "/")
	var b strings.Builder
	for i, seg := range segments {
		if seg == "" {
			if i == len(segments)-1 {
				b.WriteByte('/') // a trailing slash is harmless
				break
			}
			return "", fmt.Errorf("empty path segment")
		}
		s, err := url.PathUnescape(seg)
		if err != nil {
			return "", fmt.Errorf("bad escape in path segment %q", seg)
		}
		if s == "." || s == ".." || strings.ContainsAny(s, "/\\\x00") {
			return "", fmt.Errorf("path segment %q is not allowed", seg)
		}
		b.WriteByte('/')
		b.WriteString(s)
	}
	if b.Len() == 0 {
		return "/", nil
	}
	return b.String(), nil
}
