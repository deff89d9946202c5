package controlplane

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

// A Cluster's change reaches the sessions that wait on it, to be minted or
// revoked, and not the Active ones, which would otherwise all be queued
// ahead of a new session; a Cluster being deleted reaches every session
// (sessionsOf).
func TestOnlySessionsThatWaitOnAClusterFollowItsChanges(t *testing.T) {
	now := metav1.Now()
	for _, c := range []struct {
		phase      v1alpha1.SessionPhase
		terminated bool
		deleting   bool
		want       bool
	}{
		{phase: "", want: true},
		{phase: v1alpha1.PhasePending, want: true},
		{phase: v1alpha1.PhasePendingApproval, want: true},
		{phase: v1alpha1.PhaseScheduled, want: true},
		{phase: v1alpha1.PhaseExpired, want: true},
		{phase: v1alpha1.PhaseTerminated, want: true},
		{phase: v1alpha1.PhaseFailed, want: true},
		{phase: v1alpha1.PhaseActive, want: false},
		{phase: v1alpha1.PhaseActive, terminated: true, want: true},
		{phase: v1alpha1.PhaseActive, deleting: true, want: true},
	} {
		s := &v1alpha1.Session{Spec: v1alpha1.SessionSpec{Terminated: c.terminated}, Status: v1alpha1.SessionStatus{Phase: c.phase}}
		if c.deleting {
			s.DeletionTimestamp = &now
		}
		if got := waitsOnCluster(s); got != c.want {
			t.Errorf("phase %q, terminated %v, deleting %v: waitsOnCluster = %v, want %v", c.phase, c.terminated, c.deleting, got, c.want)
		}
	}
}
