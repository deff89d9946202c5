package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func TestCallerSizedFieldsAreCappedAndMarked(t *testing.T) {
	huge := strings.Repeat("é", 1<<20) // 2 MiB, two bytes a character
	ev := &auditv1.Event{
		RequestURI: "/sessiongate/s/kas/api/v1/namespaces/demo/pods/" + huge,
		UserAgent:  huge,
		Verb:       huge,
		ObjectRef:  &auditv1.ObjectReference{Resource: "pods", Name: huge},
		Annotations: map[string]string{
			AnnotationSession: "s",
			AnnotationCommand: huge,
		},
	}
	var out bytes.Buffer
	New(&out).Log(ev)
	if out.Len() > 32<<10 {
		t.Fatalf("a record of %d bytes", out.Len())
	}
	var got auditv1.Event
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		v   string
		max int
	}{
		"requestURI": {got.RequestURI, MaxRequestURI}, "userAgent": {got.UserAgent, MaxUserAgent}, "verb": {got.Verb, MaxField},
		"objectRef.name": {got.ObjectRef.Name, MaxField}, "command": {got.Annotations[AnnotationCommand], MaxAnnotationValue},
	} {
		if len(c.v) > c.max || len(c.v) < c.max-utf8.UTFMax || !utf8.ValidString(c.v) {
			t.Errorf("%s: %d bytes (valid UTF-8: %v), want at most %d", name, len(c.v), utf8.ValidString(c.v), c.max)
		}
	}
	want := "requestURI,userAgent,verb,objectRef.name,annotations." + AnnotationCommand
	if got.Annotations[AnnotationTruncated] != want || got.Annotations[AnnotationSession] != "s" || got.ObjectRef.Resource != "pods" {
		t.Errorf("annotations %v, resource %q; want %s marked truncated and the rest kept", got.Annotations, got.ObjectRef.Resource, want)
	}
}

func TestSmallRecordsAreNotMarked(t *testing.T) {
	ev := &auditv1.Event{RequestURI: "/sessiongate/s/kas/api", UserAgent: "kubectl", Annotations: map[string]string{AnnotationSession: "s"}}
	Limit(ev)
	if _, ok := ev.Annotations[AnnotationTruncated]; ok || ev.RequestURI != "/sessiongate/s/kas/api" {
		t.Errorf("an ordinary record was changed: %+v", ev)
	}
}
