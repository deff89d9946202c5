package kubectldebug

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes/scheme"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxBody is the largest request body the gateway reads to judge; a debug
// pod or patch is a few kilobytes.
const MaxBody = 1 << 20

// maxPatchOps bounds a JSON patch: kubectl sends none, and a long one is no
// debugging.
const maxPatchOps = 64

// Media types of pod bodies.
const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

func unsupported(format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), Code: http.StatusUnsupportedMediaType, Invalid: true}
}

func mediaType(contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType
	}
	return mt
}

// DecodePod reads a pod from a request body in the encodings the API server
// takes: JSON (case-sensitively, as the API server reads it), YAML or
// protobuf. The gateway forwards its own encoding of what it read, so
// whatever the decoders disagree on never reaches the target unjudged.
func DecodePod(contentType string, body []byte) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	switch mediaType(contentType) {
	case mediaJSON, "":
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, pod); err != nil {
			return nil, invalid("", "the request body is not a JSON Pod: %v", err)
		}
	case mediaYAML:
		js, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, invalid("", "the request body is not a YAML Pod: %v", err)
		}
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, pod); err != nil {
			return nil, invalid("", "the request body is not a YAML Pod: %v", err)
		}
	case mediaProtobuf:
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, pod)
		if err != nil {
			return nil, invalid("", "the request body is not a protobuf Pod: %v", err)
		}
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return nil, invalid("", "the request body is a %T, not a Pod", obj)
		}
		pod = p
	default:
		return nil, unsupported("a debug session's pods are judged before they are created, and the gateway reads JSON, YAML or protobuf, not %q", contentType)
	}
	if (pod.APIVersion != "" && pod.APIVersion != "v1") || (pod.Kind != "" && pod.Kind != "Pod") {
		return nil, invalid("", "the request body is a %s %s, not a v1 Pod", pod.APIVersion, pod.Kind)
	}
	return pod, nil
}

// ApplyEphemeral is what a write to pods/NAME/ephemeralcontainers makes of
// pod before: the pod of a PUT, or before patched with a PATCH as the API
// server patches it (strategic merge patch, as kubectl debug sends, JSON
// merge patch, or a JSON patch of add, remove, replace and test). Server-side
// apply is refused: what it makes depends on managed fields the gateway does
// not judge.
func ApplyEphemeral(before *corev1.Pod, method, contentType string, body []byte) (*corev1.Pod, error) {
	if method == http.MethodPut {
		return DecodePod(contentType, body)
	}
	if method != http.MethodPatch {
		return nil, invalid("", "%s is not a write of ephemeral containers", method)
	}
	orig, err := json.Marshal(before)
	if err != nil {
		return nil, err
	}
	var patched []byte
	switch pt := types.PatchType(mediaType(contentType)); pt {
	case types.StrategicMergePatchType:
		patched, err = strategicpatch.StrategicMergePatch(orig, body, &corev1.Pod{})
	case types.MergePatchType:
		patched, err = jsonpatch.MergePatch(orig, body)
	case types.JSONPatchType:
		var p jsonpatch.Patch
		if p, err = jsonpatch.DecodePatch(body); err != nil {
			break
		}
		if len(p) > maxPatchOps {
			return nil, unsupported("a JSON patch of ephemeral containers may have at most %d operations, this one has %d", maxPatchOps, len(p))
		}
		for i, op := range p {
			switch op.Kind() {
			case "add", "remove", "replace", "test":
			default:
				return nil, unsupported("operation %d of the JSON patch is %q: the gateway judges add, remove, replace and test only (kubectl debug sends a strategic merge patch)", i, op.Kind())
			}
		}
		patched, err = p.Apply(orig)
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return nil, unsupported("server-side apply of ephemeral containers is not judged by the gateway: use kubectl debug, or a strategic merge patch")
	default:
		return nil, unsupported("patch type %q is not judged by the gateway: use kubectl debug, or a strategic merge patch", contentType)
	}
	if err != nil {
		return nil, invalid("", "the patch cannot be applied to pod %s: %v", before.Name, err)
	}
	after := &corev1.Pod{}
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(patched, after); err != nil {
		return nil, invalid("", "the patched pod cannot be read: %v", err)
	}
	return after, nil
}

// EphemeralPatch is the strategic merge patch that adds exactly added to a
// pod: what the gateway forwards in place of the caller's body.
func EphemeralPatch(added []corev1.EphemeralContainer) ([]byte, error) {
	return json.Marshal(map[string]any{"spec": map[string]any{"ephemeralContainers": added}})
}
