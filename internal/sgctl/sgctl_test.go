package sgctl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/tools/clientcmd"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

func TestKubeconfigUsesTheExecPluginAndHoldsNoToken(t *testing.T) {
	t.Setenv(EnvToken, "secret-token-value")
	s := &v1alpha1.Session{}
	s.Name = "alice-x"
	s.Spec.AccessLevel = v1alpha1.AccessLevel{ClusterRole: "edit", Namespaces: []string{"demo"}}
	s.Status.Endpoint = "https://gw.example.com/sessiongate/alice-x/kas"
	b, err := Kubeconfig(&Config{TokenFile: "/home/alice/.token"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("secret-token-value")) {
		t.Fatal("the kubeconfig holds the token")
	}
	kc, err := clientcmd.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := kc.Contexts[kc.CurrentContext]
	if kc.Clusters[ctx.Cluster].Server != s.Status.Endpoint || ctx.Namespace != "demo" {
		t.Errorf("kubeconfig points at %q in namespace %q", kc.Clusters[ctx.Cluster].Server, ctx.Namespace)
	}
	exec := kc.AuthInfos[ctx.AuthInfo].Exec
	if exec == nil || strings.Join(exec.Args, " ") != "token" || len(exec.Env) != 1 || exec.Env[0].Value != "/home/alice/.token" {
		t.Errorf("user is not the sgctl token plugin: %+v", kc.AuthInfos[ctx.AuthInfo])
	}
}

func TestTokenPrintsAnExecCredential(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	payload, _ := json.Marshal(map[string]any{"exp": exp})
	tok := "e30." + base64.RawURLEncoding.EncodeToString(payload) + ".sig"
	t.Setenv(EnvToken, tok)
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"token"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	var cred clientauthv1.ExecCredential
	if err := json.Unmarshal(out.Bytes(), &cred); err != nil {
		t.Fatal(err)
	}
	if cred.Kind != "ExecCredential" || cred.APIVersion != "client.authentication.k8s.io/v1" || cred.Status.Token != tok ||
		cred.Status.ExpirationTimestamp == nil || cred.Status.ExpirationTimestamp.Unix() != exp {
		t.Errorf("got %+v", cred)
	}
}

func TestNoTokenIsAClearError(t *testing.T) {
	t.Setenv(EnvToken, "")
	_, err := (&Config{}).Token(t.Context())
	if err == nil || !strings.Contains(err.Error(), EnvToken) {
		t.Errorf("got %v, want an error naming $%s", err, EnvToken)
	}
}
