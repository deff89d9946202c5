package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/controlplane"
	"sessiongate.dev/sessiongate/internal/testenv"
)

// recordedClusterName is the target registered a second time, behind a
// recorder that keeps every request the gateway sends it.
const recordedClusterName = "recorded"

var (
	recorderOnce sync.Once
	recorder     *testenv.Recorder
	recorderErr  error
)

// recordedCluster registers the target as Cluster "recorded", whose server
// is a recording proxy in front of it, and returns the recorder. Sessions on
// it (onRecorded) reach the same API server, and the test can read what
// arrived there.
func recordedCluster(t *testing.T) *testenv.Recorder {
	t.Helper()
	recorderOnce.Do(func() {
		ctx := context.Background()
		if recorder, recorderErr = testenv.StartRecorder(target); recorderErr != nil {
			return
		}
		if recorderErr = testenv.RegisterTarget(ctx, mgmt, target, namespace, recordedClusterName); recorderErr != nil {
			return
		}
		c := &v1alpha1.Cluster{}
		if recorderErr = mgmt.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: recordedClusterName}, c); recorderErr != nil {
			return
		}
		// The recorder is not the server the kubeconfig names: its Secret
		// lets its credential go there, through the recorder's CA, all the
		// same.
		if recorderErr = allowServers(ctx, c.Spec.KubeconfigSecretRef.Name, recorder.URL, recorder.CAPEM); recorderErr != nil {
			return
		}
		patch := client.MergeFrom(c.DeepCopy())
		c.Spec.Server, c.Spec.CABundle = recorder.URL, recorder.CAPEM
		recorderErr = mgmt.Client.Patch(ctx, c, patch)
	})
	testenv.Must(t, recorderErr)
	// Sessions mint only once the control plane has seen the recorder as
	// the server: Ready for the Cluster's current generation.
	testenv.Eventually(t, 30*time.Second, func() error {
		c := &v1alpha1.Cluster{}
		testenv.Must(t, mgmt.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: recordedClusterName}, c))
		r := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ClusterConditionReady)
		if c.Spec.Server != recorder.URL || r == nil || r.Status != metav1.ConditionTrue || r.ObservedGeneration != c.Generation {
			return fmt.Errorf("cluster %s behind the recorder is not Ready for generation %d: %+v", recordedClusterName, c.Generation, r)
		}
		return nil
	})
	return recorder
}

// allowServers lets the credential of the kubeconfig Secret name in the
// suite's namespace go to the servers listed, through ca too.
func allowServers(ctx context.Context, name, servers string, ca []byte) error {
	sec := &corev1.Secret{}
	if err := mgmt.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sec); err != nil {
		return err
	}
	patch := client.MergeFrom(sec.DeepCopy())
	metav1.SetMetaDataAnnotation(&sec.ObjectMeta, controlplane.AnnotationServers, servers)
	kc, err := testenv.TrustAlso(sec.Data[controlplane.DefaultKubeconfigKey], ca)
	if err != nil {
		return err
	}
	sec.Data[controlplane.DefaultKubeconfigKey] = kc
	return mgmt.Client.Patch(ctx, sec, patch)
}

// onRecorded puts a session on the recorded cluster.
func onRecorded(s *v1alpha1.Session) { s.Spec.Cluster = recordedClusterName }

// proxied returns the requests the proxy sent through the recorder to paths
// containing pathPart: those without a client certificate, which only the
// control plane's minting client presents.
func proxied(rec *testenv.Recorder, pathPart string) []testenv.Recorded {
	var out []testenv.Recorded
	for _, r := range rec.Requests(pathPart) {
		if r.ClientCertCN == "" {
			out = append(out, r)
		}
	}
	return out
}
