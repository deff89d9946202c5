// Package testenv is what sessiongate's tests share: the real local clusters
// of internal/localkube under their test names, polling, a gateway's RBAC,
// and a recording upstream. The product never imports it.
package testenv

import (
	"path/filepath"
	"runtime"

	"sessiongate.dev/sessiongate/internal/localkube"
)

// The local clusters tests run against.
type (
	Cluster     = localkube.Cluster
	CA          = localkube.CA
	Kwok        = localkube.Kwok
	KwokOptions = localkube.KwokOptions
	S3          = localkube.S3
)

// NodeName is the kwok node pods are placed on.
const NodeName = localkube.NodeName

var (
	StartManagement        = localkube.StartManagement
	StartTarget            = localkube.StartTarget
	StartKwok              = localkube.StartKwok
	RunningPod             = localkube.RunningPod
	RegisterTarget         = localkube.RegisterTarget
	TrustAlso              = localkube.TrustAlso
	AggregateClusterRoles  = localkube.AggregateClusterRoles
	NewCA                  = localkube.NewCA
	FreePort               = localkube.FreePort
	StartControllerManager = localkube.StartControllerManager
	StartScheduler         = localkube.StartScheduler
	StartS3                = localkube.StartS3
	ApplyFile              = localkube.ApplyFile
	Apply                  = localkube.Apply
	BinDir                 = localkube.BinDir
)

// RepoRoot is the root of the sessiongate checkout.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}
