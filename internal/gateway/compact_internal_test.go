package gateway

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
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

// transformedTwice runs transform over two objects decoded apart from doc,
// with a collection before each (objects arrive minutes apart), and checks
// that each comes out as want makes of doc.
func transformedTwice[T any](t *testing.T, doc string, transform toolscache.TransformFunc, want func(*T)) (a, b *T) {
	t.Helper()
	var got []*T
	for range 2 {
		runtime.GC()
		w := decoded[T](t, doc)
		want(w)
		obj, err := transform(decoded[T](t, doc))
		if err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(obj, w) {
			t.Fatalf("the transform changed more than it should:\n%+v\nwant\n%+v", obj, w)
		}
		got = append(got, obj.(*T))
	}
	return got[0], got[1]
}

// Cached Sessions share the strings they repeat, and keep every value.
func TestCachedSessionsShareTheStringsTheyRepeat(t *testing.T) {
	const doc = `{"metadata":{"name":"s","namespace":"sessiongate","managedFields":[{"manager":"kubectl"}]},
		"spec":{"cluster":"prod-eu","policy":"sre","accessLevel":{"clusterRole":"view","namespaces":["checkout"]},
			"owner":{"type":"User","userPrincipal":{"name":"alice@example.com","claim":"email"}},"ttl":"1h"},
		"status":{"phase":"Active","backendKASURL":"https://prod-eu.example.com:6443","policy":"sre",
			"conditions":[{"type":"Ready","status":"True","reason":"Active","message":"until then","lastTransitionTime":"2026-12-06T00:00:00Z"}]}}`
	a, b := transformedTwice(t, doc, internSessions(cache.TransformStripManagedFields()), func(s *v1alpha1.Session) { s.ManagedFields = nil })
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
	a, b := transformedTwice(t, doc, compactSecrets(cache.TransformStripManagedFields()), func(s *corev1.Secret) { s.Labels = nil })
	if !metav1.IsControlledBy(a, &v1alpha1.Session{ObjectMeta: metav1.ObjectMeta{UID: "u"}}) {
		t.Fatal("the cached Secret lost its controller")
	}
	if &a.Data[credentials.KeyCA][0] != &b.Data[credentials.KeyCA][0] {
		t.Error("the two cached Secrets hold two copies of their target's CA")
	}
	if !sameBytes(a.Namespace, b.Namespace) || !sameBytes(a.OwnerReferences[0].APIVersion, b.OwnerReferences[0].APIVersion) {
		t.Error("the two cached Secrets hold two copies of their namespace or owner's API version")
	}
}

// Requesters and operators choose some of the shared strings (owner and
// policy names): however many distinct or long values they send, the table
// stays bounded, and a value it did not take is kept as it came.
func TestTheSharedStringTableIsBounded(t *testing.T) {
	long := strings.Repeat("x", maxInternable+1)
	intern(&long)
	for i := range maxInterned + 100 {
		v := fmt.Sprintf("owner-%d@example.com", i)
		intern(&v)
		if v != fmt.Sprintf("owner-%d@example.com", i) {
			t.Fatalf("interning changed %q", v)
		}
	}
	interned.Lock()
	defer interned.Unlock()
	if n := len(interned.m); n > maxInterned {
		t.Errorf("the table holds %d strings, more than its bound %d", n, maxInterned)
	}
	if _, ok := interned.m[long]; ok {
		t.Errorf("the table took a %d-byte value", len(long))
	}
}
