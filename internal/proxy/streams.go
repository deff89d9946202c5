package proxy

import (
	"fmt"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/request"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/execpolicy"
	"sessiongate.dev/sessiongate/internal/streams"
)

// checkStream applies the session's stream policy p to an exec or attach
// before anything reaches the target, on the streams as opts reads them: the
// rule that refuses it, and the answer for the caller.
func checkStream(session string, p *v1alpha1.StreamPolicy, info *request.RequestInfo, opts *streams.Options, q url.Values) (rule string, err *apierrors.StatusError) {
	if p == nil || opts == nil {
		return "", nil
	}
	gr := schema.GroupResource{Resource: "pods/" + info.Subresource}
	switch info.Subresource {
	case "attach":
		if p.ForbidInteractive {
			return "forbidInteractive", apierrors.NewForbidden(gr, info.Name, fmt.Errorf("session %s may not attach: its policy forbids interactive streams", session))
		}
	case "exec":
		if p.ForbidInteractive && opts.Stdin && opts.TTY {
			return "forbidInteractive", apierrors.NewForbidden(gr, info.Name, fmt.Errorf("session %s may not open an interactive exec (stdin and a TTY): its policy forbids interactive streams", session))
		}
		if r := p.Exec; r != nil {
			d := execpolicy.Policy{Allow: r.Allow, Deny: r.Deny, AllowUndecidable: r.AllowUndecidable}.Check(q["command"], execpolicy.StdinOf(opts.Stdin, opts.TTY))
			if !d.Allowed {
				return d.Rule, apierrors.NewForbidden(gr, info.Name, fmt.Errorf("session %s: command %s", session, d))
			}
		}
	}
	return "", nil
}
