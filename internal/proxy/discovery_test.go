package proxy

import (
	"bytes"
	"net/http"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const targetAddr = "10.0.0.1:6443"

func protobuf(t *testing.T, obj runtime.Object, kind string) []byte {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(discoveryCodecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		t.Fatal("no protobuf serializer")
	}
	obj.GetObjectKind().SetGroupVersionKind(metav1.Unversioned.WithKind(kind))
	var b bytes.Buffer
	if err := info.Serializer.Encode(obj, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRewriteDiscoveryNamesOnlyTheGateway(t *testing.T) {
	addrs := []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: targetAddr}, {ClientCIDR: "10.0.0.0/8", ServerAddress: "10.0.0.2:6443"}}
	versions := &metav1.APIVersions{Versions: []string{"v1"}, ServerAddressByClientCIDRs: addrs}
	groups := &metav1.APIGroupList{Groups: []metav1.APIGroup{
		{Name: "apps", Versions: []metav1.GroupVersionForDiscovery{{GroupVersion: "apps/v1", Version: "v1"}}, ServerAddressByClientCIDRs: addrs},
		{Name: "batch", ServerAddressByClientCIDRs: addrs},
	}}
	cases := []struct {
		name, contentType, encoding string
		body                        []byte
		rewrite                     bool
	}{
		{"APIVersions JSON without apiVersion, as kube-apiserver writes it", "application/json",
			"", []byte(`{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"` + targetAddr + `"}]}`), true},
		{"APIGroupList JSON", "application/json", "",
			[]byte(`{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"apps","versions":[{"groupVersion":"apps/v1","version":"v1"}],"preferredVersion":{"groupVersion":"apps/v1","version":"v1"},"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"` + targetAddr + `"}]}]}`), true},
		{"APIVersions protobuf", "application/vnd.kubernetes.protobuf", "", protobuf(t, versions, "APIVersions"), true},
		{"APIGroupList protobuf", "application/vnd.kubernetes.protobuf", "", protobuf(t, groups, "APIGroupList"), true},
		{"aggregated discovery", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", "",
			[]byte(`{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","items":[]}`), false},
		{"a Status", "application/json", "", []byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","code":403}`), false},
		{"compressed", "application/json", "gzip", []byte("\x1f\x8b..."), false},
		{"not JSON", "application/json", "", []byte("<html>"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{"Content-Type": {c.contentType}}
			if c.encoding != "" {
				h.Set("Content-Encoding", c.encoding)
			}
			out, ok := rewriteDiscovery(c.body, h, "gw.example:8443")
			if ok != c.rewrite {
				t.Fatalf("rewritten = %v, want %v", ok, c.rewrite)
			}
			if !ok {
				return
			}
			if bytes.Contains(out, []byte("10.0.0.")) || !bytes.Contains(out, []byte("gw.example:8443")) {
				t.Errorf("rewritten document still names the target or not the gateway: %q", out)
			}
			info, _ := runtime.SerializerInfoForMediaType(discoveryCodecs.SupportedMediaTypes(), c.contentType)
			obj, _, err := info.Serializer.Decode(out, nil, nil)
			if err != nil {
				t.Fatalf("the rewritten document does not decode: %v\n%q", err, out)
			}
			switch o := obj.(type) {
			case *metav1.APIVersions:
				if len(o.Versions) == 0 {
					t.Errorf("versions lost: %+v", o)
				}
			case *metav1.APIGroupList:
				if len(o.Groups) == 0 || o.Groups[0].Name != "apps" {
					t.Errorf("groups lost: %+v", o)
				}
			default:
				t.Errorf("rewritten into a %T", obj)
			}
		})
	}
}
