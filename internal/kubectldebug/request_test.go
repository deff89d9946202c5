package kubectldebug

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
)

func target() *corev1.Pod {
	p := pod("web", corev1.Container{Name: "app", Image: "example.invalid/web:1"})
	p.ResourceVersion = "7"
	p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "old", Image: "busybox:1"}}}
	return p
}

// kubectlPatch is the patch kubectl debug sends: a two-way strategic merge
// patch from the pod to the pod with its debug container.
func kubectlPatch(t *testing.T, before *corev1.Pod, ec corev1.EphemeralContainer) []byte {
	t.Helper()
	after := before.DeepCopy()
	after.Spec.EphemeralContainers = append(after.Spec.EphemeralContainers, ec)
	a, _ := json.Marshal(before)
	b, _ := json.Marshal(after)
	patch, err := strategicpatch.CreateTwoWayMergePatch(a, b, before)
	if err != nil {
		t.Fatal(err)
	}
	return patch
}

func TestKubectlsPatchIsJudgedAsTheAPIServerAppliesIt(t *testing.T) {
	before := target()
	for _, tc := range []struct {
		image string
		ok    bool
	}{{"busybox:1.36", true}, {"alpine:3", false}} {
		ec := EphemeralContainer(before, "dbg", tc.image, "app", Options{})
		after, err := ApplyEphemeral(before, http.MethodPatch, "application/strategic-merge-patch+json", kubectlPatch(t, before, ec))
		if err != nil {
			t.Fatal(err)
		}
		added, err := checker().CheckEphemeral(before, after)
		if tc.ok != (err == nil) {
			t.Fatalf("image %s: %v", tc.image, err)
		}
		if tc.ok && (len(added) != 1 || added[0].Name != "dbg" || added[0].TargetContainerName != "app") {
			t.Fatalf("added %+v", added)
		}
	}
}

func TestPatchTypes(t *testing.T) {
	before := target()
	for _, tc := range []struct {
		name, contentType, method, body string
		image                           string // of the one added, or "" for an error
		code                            int32
	}{
		{name: "strategic", contentType: "application/strategic-merge-patch+json; charset=utf-8", method: "PATCH",
			body: `{"spec":{"ephemeralContainers":[{"name":"dbg","image":"busybox:2"}]}}`, image: "busybox:2"},
		{name: "merge patch replaces the list", contentType: "application/merge-patch+json", method: "PATCH",
			body: `{"spec":{"ephemeralContainers":[{"name":"old","image":"busybox:1"},{"name":"dbg","image":"busybox:3"}]}}`, image: "busybox:3"},
		{name: "json patch", contentType: "application/json-patch+json", method: "PATCH",
			body: `[{"op":"test","path":"/metadata/name","value":"web"},{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"dbg","image":"busybox:4"}}]`, image: "busybox:4"},
		{name: "json patch copy", contentType: "application/json-patch+json", method: "PATCH",
			body: `[{"op":"copy","from":"/spec/ephemeralContainers/0","path":"/spec/ephemeralContainers/-"}]`, code: 415},
		{name: "json patch move", contentType: "application/json-patch+json", method: "PATCH",
			body: `[{"op":"move","from":"/spec/containers/0","path":"/spec/ephemeralContainers/-"}]`, code: 415},
		{name: "long json patch", contentType: "application/json-patch+json", method: "PATCH",
			body: "[" + strings.Repeat(`{"op":"test","path":"/metadata/name","value":"web"},`, 64) + `{"op":"test","path":"/metadata/name","value":"web"}]`, code: 415},
		{name: "server-side apply", contentType: "application/apply-patch+yaml", method: "PATCH", body: "spec: {}", code: 415},
		{name: "unknown", contentType: "text/plain", method: "PATCH", body: "x", code: 415},
		{name: "broken strategic", contentType: "application/strategic-merge-patch+json", method: "PATCH", body: `{"spec":`, code: 400},
		{name: "failing test op", contentType: "application/json-patch+json", method: "PATCH", body: `[{"op":"test","path":"/metadata/name","value":"db"}]`, code: 400},
		{name: "put", contentType: "application/json", method: "PUT",
			body: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"apps"},"spec":{"containers":[{"name":"app","image":"example.invalid/web:1"}],"ephemeralContainers":[{"name":"old","image":"busybox:1"},{"name":"dbg","image":"busybox:5"}]}}`, image: "busybox:5"},
		{name: "put of another kind", contentType: "application/json", method: "PUT", body: `{"apiVersion":"v1","kind":"Secret"}`, code: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after, err := ApplyEphemeral(before, tc.method, tc.contentType, []byte(tc.body))
			if tc.image == "" {
				var e *Error
				if !errors.As(err, &e) || e.Status("pods", "web").ErrStatus.Code != tc.code {
					t.Fatalf("got %v, want %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			added, err := checker().CheckEphemeral(before, after)
			if err != nil || len(added) != 1 || added[0].Image != tc.image {
				t.Fatalf("added %+v, %v", added, err)
			}
		})
	}
}

// TestCaseVariantKeysAreReadAsTheAPIServerReadsThem: encoding/json would
// take "Image" for image; the API server ignores it. The gateway reads as
// the API server does, and forwards its own encoding.
func TestCaseVariantKeysAreReadAsTheAPIServerReadsThem(t *testing.T) {
	before := target()
	body := `{"spec":{"ephemeralContainers":[{"name":"dbg","image":"alpine:3","Image":"busybox:1"}]}}`
	after, err := ApplyEphemeral(before, http.MethodPatch, "application/strategic-merge-patch+json", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	_, err = checker().CheckEphemeral(before, after)
	refusedBy(t, err, RuleImages, `"alpine:3"`)

	p, err := DecodePod("application/json", []byte(`{"spec":{"containers":[{"name":"c","image":"alpine:3","IMAGE":"busybox:1"}]}}`))
	if err != nil || p.Spec.Containers[0].Image != "alpine:3" {
		t.Fatalf("read %v, %v", p, err)
	}
}

func TestDecodePodEncodings(t *testing.T) {
	want := pod("web", corev1.Container{Name: "app", Image: "busybox:1"})
	want.APIVersion, want.Kind = "v1", "Pod"
	js, _ := json.Marshal(want)
	var pb strings.Builder
	enc := scheme.Codecs.EncoderForVersion(protobufSerializer(t), corev1.SchemeGroupVersion)
	if err := enc.Encode(want, &pb); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ contentType, body string }{
		{"application/json", string(js)},
		{"", string(js)},
		{"application/yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: apps}\nspec:\n  containers: [{name: app, image: 'busybox:1'}]\n"},
		{"application/vnd.kubernetes.protobuf", pb.String()},
	} {
		p, err := DecodePod(tc.contentType, []byte(tc.body))
		if err != nil || p.Name != "web" || p.Spec.Containers[0].Image != "busybox:1" {
			t.Errorf("%s: %v, %v", tc.contentType, p, err)
		}
	}
	if _, err := DecodePod("application/cbor", []byte{0xa0}); err == nil {
		t.Error("cbor read")
	}
}

func protobufSerializer(t *testing.T) runtime.Serializer {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), "application/vnd.kubernetes.protobuf")
	if !ok {
		t.Fatal("no protobuf serializer")
	}
	return info.Serializer
}

func TestEphemeralPatchAddsExactlyTheJudgedContainers(t *testing.T) {
	before := target()
	added := []corev1.EphemeralContainer{EphemeralContainer(before, "dbg", "busybox:1.36", "app", Options{RunAsNonRoot: true})}
	patch, err := EphemeralPatch(added)
	if err != nil {
		t.Fatal(err)
	}
	after, err := ApplyEphemeral(before, http.MethodPatch, "application/strategic-merge-patch+json", patch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := checker().CheckEphemeral(before, after)
	if err != nil || len(got) != 1 || got[0].Name != "dbg" || !*got[0].SecurityContext.RunAsNonRoot || len(after.Spec.EphemeralContainers) != 2 {
		t.Fatalf("%+v, %v", after.Spec.EphemeralContainers, err)
	}
}

func FuzzApplyEphemeral(f *testing.F) {
	f.Add("application/strategic-merge-patch+json", `{"spec":{"ephemeralContainers":[{"name":"dbg","image":"busybox:1"}]}}`)
	f.Add("application/json-patch+json", `[{"op":"add","path":"/spec/ephemeralContainers/-","value":{"name":"d","image":"alpine:3"}}]`)
	f.Add("application/merge-patch+json", `{"spec":{"ephemeralContainers":null}}`)
	f.Add("application/json", `{"spec":{"ephemeralContainers":[{"name":"d","image":"x"}]}}`)
	c := checker()
	f.Fuzz(func(t *testing.T, contentType, body string) {
		method := http.MethodPatch
		if contentType == "application/json" {
			method = http.MethodPut
		}
		before := target()
		after, err := ApplyEphemeral(before, method, contentType, []byte(body))
		if err != nil {
			return
		}
		added, err := c.CheckEphemeral(before, after)
		if err != nil {
			return
		}
		// Whatever got through passes the rules on its own.
		for _, ec := range added {
			if c.CheckImage("image", ec.Image) != nil {
				t.Fatalf("image %q got through", ec.Image)
			}
		}
	})
}
