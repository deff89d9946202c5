package chart_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/internal/chart"
	"sessiongate.dev/sessiongate/internal/devissuer"
	"sessiongate.dev/sessiongate/internal/gateway"
	"sessiongate.dev/sessiongate/internal/testenv"
)

const audience = "sessiongate-chart-test"

// The package shares a management cluster, a target, an OIDC issuer, a
// CA for serving certificates, and the sessiongate binary built from this
// checkout — the program the chart's image runs.
var (
	chartDir     = filepath.Join(testenv.RepoRoot(), "charts", "sessiongate")
	mgmt, target *testenv.Cluster
	issuer       *devissuer.Issuer
	issuerURL    string
	issuerCA     []byte
	gwCA         *testenv.CA
	binary       string
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(klog.NewKlogr())
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "sessiongate-chart-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "sessiongate")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", binary, "./cmd/sessiongate")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building sessiongate: %w\n%s", err, out)
	}
	if mgmt, err = testenv.StartManagement(); err != nil {
		return 0, err
	}
	defer mgmt.Stop()
	if target, err = testenv.StartTarget(); err != nil {
		return 0, err
	}
	defer target.Stop()
	if issuer, err = devissuer.New(); err != nil {
		return 0, err
	}
	issuerSrv := httptest.NewTLSServer(issuer)
	defer issuerSrv.Close()
	issuerURL = issuerSrv.URL
	issuer.SetURL(issuerURL)
	issuerCA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuerSrv.Certificate().Raw})
	if gwCA, err = testenv.NewCA("sessiongate-chart-test"); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// values are ci/minimal-values.yaml with overrides (YAML) merged in, the
// way `helm install -f ci/minimal-values.yaml -f override.yaml` merges.
func values(t testing.TB, overrides ...string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, "ci", "minimal-values.yaml"))
	testenv.Must(t, err)
	out := v.AsMap()
	for _, o := range overrides {
		ov, err := chartutil.ReadValues([]byte(o))
		testenv.Must(t, err)
		out = chartutil.MergeTables(ov.AsMap(), out)
	}
	return out
}

// render renders the chart for release sessiongate in namespace ns.
func render(t testing.TB, ns string, vals map[string]any) *chart.Rendered {
	t.Helper()
	r, err := chart.Render(chartDir, chart.Release{Name: "sessiongate", Namespace: ns}, vals)
	if err != nil {
		t.Fatalf("rendering the chart: %v", err)
	}
	return r
}

// objects are the rendered objects, decoded with the gateway's scheme.
func objects(t testing.TB, r *chart.Rendered) []client.Object {
	t.Helper()
	objs, err := r.Objects(gateway.Scheme())
	testenv.Must(t, err)
	return objs
}

// only returns the single rendered object of type T.
func only[T client.Object](t testing.TB, objs []client.Object) T {
	t.Helper()
	var found []T
	for _, o := range objs {
		if typed, ok := o.(T); ok {
			found = append(found, typed)
		}
	}
	if len(found) != 1 {
		var zero T
		t.Fatalf("want one %T among the rendered objects, got %d", zero, len(found))
	}
	return found[0]
}

// args are the gateway container's arguments.
func args(t testing.TB, objs []client.Object) []string {
	t.Helper()
	d := only[*appsv1.Deployment](t, objs)
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("want one container, got %d", n)
	}
	return d.Spec.Template.Spec.Containers[0].Args
}

// flagValue is the value the args give --name, and whether they give one.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// serveFlags lists the long flags of `sessiongate serve`, inherited ones
// included, as its shell completion reports them.
func serveFlags(t testing.TB) []string {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), binary, "__complete", "serve", "--").Output()
	testenv.Must(t, err)
	var flags []string
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, "\t")
		if f, ok := strings.CutPrefix(name, "--"); ok && f != "help" {
			flags = append(flags, f)
		}
	}
	if len(flags) < 10 {
		t.Fatalf("sessiongate serve lists only %d flags:\n%s", len(flags), out)
	}
	return flags
}
