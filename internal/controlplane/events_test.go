package controlplane_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// A target that refuses the mint with a long message (an admission policy's,
// here 2 KiB of it, with characters of several bytes) still gets its Warning
// onto the Session: the API server refuses an Event note over 1 KiB, and the
// leader cuts the note to fit rather than lose the Event.
func TestALongRefusalFromTheTargetStillReachesTheSessionsEvents(t *testing.T) {
	e := newEnv(t)
	// Without the cut, the Event would be lost: the API server refuses it.
	long := strings.Repeat("é", 1024)
	err := mgmt.Client.Create(e.ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: "too-long"},
		EventTime:  metav1.NowMicro(), ReportingController: "sessiongate.dev/test", ReportingInstance: "test",
		Action: "Test", Reason: "Test", Type: corev1.EventTypeWarning, Note: long,
		Regarding: corev1.ObjectReference{Kind: "Session", Namespace: e.namespace, Name: "none"},
	})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("an Event with a %d-byte note: %v, want it refused as invalid", len(long), err)
	}

	// Every ServiceAccount the gateway makes for a session of this namespace
	// is refused with the long message.
	name := "refuse-" + e.namespace
	testenv.Must(t, target.Client.Create(e.ctx, &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{
				ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{credentials.LabelSessionNamespace: e.namespace}},
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"serviceaccounts"}},
				}}},
			},
			Validations: []admissionv1.Validation{{Expression: "false", Message: "refused: " + long}},
		},
	}))
	t.Cleanup(func() {
		_ = target.Client.Delete(e.ctx, &admissionv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	testenv.Must(t, target.Client.Create(e.ctx, &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: name, ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny}},
	}))
	t.Cleanup(func() {
		_ = target.Client.Delete(e.ctx, &admissionv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	// The policy takes a moment to be enforced: wait until it is.
	testenv.Eventually(t, 30*time.Second, func() error {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", GenerateName: "probe-", Labels: map[string]string{credentials.LabelSessionNamespace: e.namespace},
		}}
		if err := target.Client.Create(e.ctx, sa, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "refused: éé") {
			return fmt.Errorf("a ServiceAccount of this namespace's sessions is not refused by the policy yet: %v", err)
		}
		return nil
	})

	e.create(e.viewSession("refused"))
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, ev := range e.events("refused") {
			if ev.Type != corev1.EventTypeWarning || !strings.Contains(ev.Note, "refused: éé") {
				continue
			}
			if len(ev.Note) > 1024 || !utf8.ValidString(ev.Note) || !strings.HasSuffix(ev.Note, "…") {
				return fmt.Errorf("the Warning's note is %d bytes (valid UTF-8: %v), want at most 1024, cut at a character and marked:\n%s",
					len(ev.Note), utf8.ValidString(ev.Note), ev.Note)
			}
			return nil
		}
		return fmt.Errorf("no Warning about session refused tells the target's refusal:\n%s", e.eventNotes("refused"))
	})
	s := &v1alpha1.Session{}
	testenv.Must(t, mgmt.Client.Get(e.ctx, client.ObjectKey{Namespace: e.namespace, Name: "refused"}, s))
	if s.Status.Phase == v1alpha1.PhaseActive {
		t.Errorf("session refused is Active although the target refused its ServiceAccount")
	}
}
