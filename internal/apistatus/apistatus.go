// Package apistatus writes the gateway's refusals as Kubernetes metav1.Status
// bodies, which kubectl and client-go print well.
package apistatus

import (
	"encoding/json"
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"sessiongate.dev/sessiongate/internal/authn"
)

// Write answers with err's Status and code.
func Write(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.Kind, st.APIVersion = "Status", "v1"
	body, _ := json.Marshal(st)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(st.Code))
	_, _ = w.Write(body)
}

// Unauthorized answers 401 for a failed authentication. Only authn's own
// messages, written for callers, are shown; anything else stays generic.
func Unauthorized(w http.ResponseWriter, err error) {
	var ae *authn.Error
	if !errors.As(err, &ae) {
		err = errors.New("unauthorized")
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="sessiongate"`)
	Write(w, apierrors.NewUnauthorized(err.Error()))
}
