package proxy

import (
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"

	"sessiongate.dev/sessiongate/internal/execpolicy"
	"sessiongate.dev/sessiongate/internal/registry"
)

// checkStream applies the session's stream policy to an exec or attach
// before anything reaches the target: the rule that refuses it, and the
// answer for the caller.
func checkStream(s *registry.Session, info *request.RequestInfo, q url.Values) (rule string, err *apierrors.StatusError) {
	p := s.Limits().Streams
	if p == nil || info == nil || !info.IsResourceRequest || info.Resource != "pods" {
		return "", nil
	}
	gr := schema.GroupResource{Resource: "pods/" + info.Subresource}
	switch info.Subresource {
	case "attach":
		if p.ForbidInteractive {
			return "forbidInteractive", apierrors.NewForbidden(gr, info.Name, fmt.Errorf("session %s may not attach: its policy forbids interactive streams", s.Name))
		}
	case "exec":
		if p.ForbidInteractive && isTrue(q.Get("stdin")) && isTrue(q.Get("tty")) {
			return "forbidInteractive", apierrors.NewForbidden(gr, info.Name, fmt.Errorf("session %s may not open an interactive exec (stdin and a TTY): its policy forbids interactive streams", s.Name))
		}
		if r := p.Exec; r != nil {
			d := execpolicy.Policy{Allow: r.Allow, Deny: r.Deny, AllowUndecidable: r.AllowUndecidable}.Check(q["command"])
			if !d.Allowed {
				return d.Rule, apierrors.NewForbidden(gr, info.Name, fmt.Errorf("session %s: command %s", s.Name, d))
			}
		}
	}
	return "", nil
}

func isTrue(v string) bool { return v == "true" || v == "1" }
