// Package v1alpha1 holds the sessiongate.dev/v1alpha1 API: target Clusters and
// the Sessions that grant time-limited access to them.
//
// +kubebuilder:object:generate=true
// +groupName=sessiongate.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of sessiongate's objects.
	GroupVersion = schema.GroupVersion{Group: "sessiongate.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
