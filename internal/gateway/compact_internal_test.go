package gateway

import (
	"encoding/json"
	"runtime"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/credentials"
)

// decoded is what an informer hands the transform: objects decoded apart,
// whose equal strings are copies of their own.
func decoded[T any](t *testing.T, doc string) *T {
	t.Helper()
	out := new(T)
	if err := json.Unmarshal([]byte(doc), out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameBytes(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// Cached Sessions share the strings they repeat, and keep every value.
func TestCachedSessionsShareTheStringsTheyRepeat(t *testing.T) {
	const doc = `{"metadata":{"name":"s","namespace":"sessiongate","managedFields":[{"manager":"kubectl"}]},
		"spec":{"cluster":"prod-eu","policy":"sre","accessLevel":{"clusterRole":"view","namespaces":["checkout"]},
			"owner":{"type":"User","userPrincipal":{"name":"alice@example.com","claim":"email"}},"ttl":"1h"},
		"status":{"phase":"Active","backendKASURL":"https://prod-eu.example.com:6443","policy":"sre",
			"conditions":[{"type":"Ready","status":"True","reason":"Active","message":"until then","lastTransitionTime":"2026-12-06T00:00:00Z"}]}}`
	transform := internSessions(cache.TransformStripManagedFields())
	var got []*v1alpha1.Session
	for range 2 {
		// Sessions arrive minutes apart, with collections between them.
		runtime.GC()
		want := decoded[v1alpha1.Session](t, doc)
		want.ManagedFields = nil
		obj, err := transform(decoded[v1alpha1.Session](t, doc))
		if err != nil {
			t.Fatal(err)
		}
		s := obj.(*v1alpha1.Session)
		if !equality.Semantic.DeepEqual(s, want) {
			t.Fatalf("the transform changed the Session:\n%+v\nwant\n%+v", s, want)
		}
		got = append(got, s)
	}
	a, b := got[0], got[1]
	for name, pair := range map[string][2]string{
		"namespace":        {a.Namespace, b.Namespace},
		"cluster":          {a.Spec.Cluster, b.Spec.Cluster},
		"clusterRole":      {a.Spec.AccessLevel.ClusterRole, b.Spec.AccessLevel.ClusterRole},
		"access namespace": {a.Spec.AccessLevel.Namespaces[0], b.Spec.AccessLevel.Namespaces[0]},
		"owner":            {a.Spec.Owner.UserPrincipal.Name, b.Spec.Owner.UserPrincipal.Name},
		"phase":            {string(a.Status.Phase), string(b.Status.Phase)},
		"backendKASURL":    {a.Status.BackendKASURL, b.Status.BackendKASURL},
		"condition reason": {a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason},
	} {
		if !sameBytes(pair[0], pair[1]) {
			t.Errorf("the two cached Sessions hold two copies of their %s", name)
		}
	}
}

// Cached credentials Secrets share their target's CA and the strings they
// repeat, keep their data, annotations and owner, and drop their labels.
func TestCachedCredentialsSecretsAreCompact(t *testing.T) {
	const doc = `{"metadata":{"name":"s-credentials","namespace":"sessiongate",
			"labels":{"app.kubernetes.io/managed-by":"sessiongate","sessiongate.dev/session":"s"},
			"annotations":{"sessiongate.dev/identity":"system:serviceaccount:x:y"},
			"ownerReferences":[{"apiVersion":"sessiongate.dev/v1alpha1","kind":"Session","name":"s","uid":"u","controller":true}]},
		"type":"sessiongate.dev/credentials","data":{"ca.crt":"Q0E=","token":"dG9rZW4=","server":"aHR0cHM6Ly94"}}`
	transform := compactSecrets(cache.TransformStripManagedFields())
	var got []*corev1.Secret
	for range 2 {
		runtime.GC()
		want := decoded[corev1.Secret](t, doc)
		want.Labels = nil
		obj, err := transform(decoded[corev1.Secret](t, doc))
		if err != nil {
			t.Fatal(err)
		}
		sec := obj.(*corev1.Secret)
		if !equality.Semantic.DeepEqual(sec, want) {
			t.Fatalf("the transform changed more than the labels:\n%+v\nwant\n%+v", sec, want)
		}
		if !metav1.IsControlledBy(sec, &v1alpha1.Session{ObjectMeta: metav1.ObjectMeta{UID: "u"}}) {
			t.Fatal("the cached Secret lost its controller")
		}
		got = append(got, sec)
	}
	a, b := got[0], got[1]
	if &a.Data[credentials.KeyCA][0] != &b.Data[credentials.KeyCA][0] {
		t.Error("the two cached Secrets hold two copies of their target's CA")
	}
	if !sameBytes(a.Namespace, b.Namespace) || !sameBytes(a.OwnerReferences[0].APIVersion, b.OwnerReferences[0].APIVersion) {
		t.Error("the two cached Secrets hold two copies of their namespace or owner's API version")
	}
}
