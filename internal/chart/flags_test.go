package chart_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"sessiongate.dev/sessiongate/internal/testenv"
)

// reach says, for each flag of `sessiongate serve`, which values set it and
// to what. A flag the command gains fails TestEveryServeFlagIsReachableFromValues
// until the chart sets it and this table says how.
var reach = map[string]struct{ values, want string }{
	"kubeconfig":                   {"kubeconfigSecret: mgmt", "/etc/sessiongate/kubeconfig/kubeconfig"},
	"namespace":                    {"namespace: sessions", "sessions"},
	"gateway-name":                 {"gatewayName: prod-eu", "prod-eu"},
	"ingress-base-url":             {"ingressBaseURL: https://sg.example.org", "https://sg.example.org"},
	"min-ttl":                      {"policy: {minTTL: 30s}", "30s"},
	"max-ttl":                      {"policy: {maxTTL: 4h}", "4h"},
	"allowed-cluster-roles":        {"policy: {allowedClusterRoles: [view, edit, admin]}", "view,edit,admin"},
	"allowed-groups":               {"policy: {allowedGroups: [oncall, dba]}", "oncall,dba"},
	"denied-namespaces":            {"policy: {deniedNamespaces: [kube-system, vault]}", "kube-system,vault"},
	"sweep-interval":               {"sweep: {interval: 10m}", "10m"},
	"sweep-grace":                  {"sweep: {grace: 5m}", "5m"},
	"istio-authorization-policies": {"istio: {authorizationPolicies: true}", "true"},
	"istio-selector":               {"istio: {selector: istio=ingressgateway}", "istio=ingressgateway"},
	"recording-dir":                {"recordings: {dir: /recordings}", "/recordings"},
	"recording-s3-endpoint":        {"recordings: {s3: {endpoint: https://s3.example.org, bucket: b}}", "https://s3.example.org"},
	"recording-s3-bucket":          {"recordings: {s3: {endpoint: https://s3.example.org, bucket: casts}}", "casts"},
	"recording-s3-prefix":          {"recordings: {s3: {endpoint: https://s3.example.org, bucket: b, prefix: sg/}}", "sg/"},
	"recording-s3-region":          {"recordings: {s3: {endpoint: https://s3.example.org, bucket: b, region: eu-1}}", "eu-1"},
	"recording-s3-ca-file":         {"recordings: {s3: {endpoint: https://s3.example.org, bucket: b, caSecret: s3-ca}}", "/etc/sessiongate/s3-ca/ca.crt"},
	"auditor-groups":               {"auditorGroups: [auditors]", "auditors"},
	"listen":                       {"ports: {https: 9443}", ":9443"},
	"tls-cert-file":                {"tls: {secretName: other}", "/etc/sessiongate/tls/tls.crt"},
	"tls-key-file":                 {"tls: {secretName: other}", "/etc/sessiongate/tls/tls.key"},
	"http2":                        {"http2: false", "false"},
	"oidc-issuer-url":              {"oidc: {issuerURL: https://login.example.org}", "https://login.example.org"},
	"oidc-audience":                {"oidc: {audiences: [a, b]}", "a,b"},
	"oidc-ca-file":                 {"oidc: {caSecret: oidc-ca}", "/etc/sessiongate/oidc-ca/ca.crt"},
	"oidc-username-claim":          {"oidc: {usernameClaim: email}", "email"},
	"oidc-groups-claim":            {"oidc: {groupsClaim: roles}", "roles"},
	"oidc-owner-claims":            {"oidc: {ownerClaims: [email, sub]}", "email,sub"},
	"oidc-expiry-grace":            {"oidc: {expiryGrace: 30s}", "30s"},
	"oidc-signing-algs":            {"oidc: {signingAlgorithms: [ES256, RS256]}", "ES256,RS256"},
	"admin-groups":                 {"adminGroups: [sre]", "sre"},
	"audit-log":                    {"auditLog: /var/log/sessiongate/audit.log", "/var/log/sessiongate/audit.log"},
	"leader-elect":                 {"leaderElection: {enabled: false}", "false"},
	"leader-election-namespace":    {"leaderElection: {namespace: leases}", "leases"},
	"leader-election-id":           {"leaderElection: {id: sg-leader}", "sg-leader"},
	"metrics-bind-address":         {"ports: {metrics: 9090}", ":9090"},
	"metrics-secure":               {"metrics: {secure: false}", "false"},
	"enable-pprof":                 {"metrics: {pprof: true}", "true"},
	"health-probe-bind-address":    {"ports: {health: 9081}", ":9081"},
	"v":                            {"logging: {verbosity: 4}", "4"},
	"vmodule":                      {"logging: {vmodule: proxy=6}", "proxy=6"},
	"log-flush-frequency":          {"logging: {flushFrequency: 1s}", "1s"},
}

// TestEveryServeFlagIsReachableFromValues: each flag the built binary's
// serve command has is set by some value (rendered as --flag=value into the
// Deployment), and values.yaml names it next to its documented default.
func TestEveryServeFlagIsReachableFromValues(t *testing.T) {
	flags := serveFlags(t)
	doc, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	testenv.Must(t, err)
	for _, f := range flags {
		t.Run(f, func(t *testing.T) {
			r, ok := reach[f]
			if !ok {
				t.Fatalf("--%s is not set by any value of the chart: add a value to values.yaml, values.schema.json and templates/deployment.yaml, and a row to reach", f)
			}
			got, ok := flagValue(args(t, objects(t, render(t, "sessiongate", values(t, r.values)))), f)
			if !ok || got != r.want {
				t.Errorf("values %q: want --%s=%s in the Deployment's args, got %q (set: %v)", r.values, f, r.want, got, ok)
			}
			if !regexp.MustCompile(`#.*--` + regexp.QuoteMeta(f) + `\b[^-]`).Match(doc) {
				t.Errorf("values.yaml does not document --%s in the comment of the value that sets it", f)
			}
		})
	}
	for f := range reach {
		if !slices.Contains(flags, f) {
			t.Errorf("reach names --%s, which sessiongate serve does not have", f)
		}
	}
}
