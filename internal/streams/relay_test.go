package streams

import (
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/remotecommand"
)

// The target's final status, as the kubelet writes it, gives the audit
// record the command's exit code, or the target's reason.
func TestExitOfReadsTheTargetsStatus(t *testing.T) {
	exited := func(code string) *metav1.Status {
		return &metav1.Status{Status: metav1.StatusFailure, Reason: remotecommand.NonZeroExitCodeReason,
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: remotecommand.ExitCodeCauseType, Message: code}}}}
	}
	for _, tc := range []struct {
		name   string
		status *metav1.Status
		code   int // -1: no exit code
		err    bool
	}{
		{"success", &metav1.Status{Status: metav1.StatusSuccess}, 0, false},
		{"non-zero exit", exited("3"), 3, false},
		{"exit code that is no number", exited("three"), -1, true},
		{"internal error", &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Message: "cmd wait"}, -1, true},
		{"exit reason without details", &metav1.Status{Status: metav1.StatusFailure, Reason: remotecommand.NonZeroExitCodeReason}, -1, true},
	} {
		code, err := exitOf(tc.status)
		got := -1
		if code != nil {
			got = *code
		}
		var st *apierrors.StatusError
		if got != tc.code || (err != nil) != tc.err || (err != nil && !errors.As(err, &st)) {
			t.Errorf("%s: exit code %d, error %v; want %d, error %v", tc.name, got, err, tc.code, tc.err)
		}
	}
}
