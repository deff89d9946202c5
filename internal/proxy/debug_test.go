package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"sessiongate.dev/sessiongate/internal/kubectldebug"
)

func TestDebugWritesAreKnownByTheAPIServersReading(t *testing.T) {
	h := NewHandler(nil, nil, nil)
	for _, tc := range []struct {
		method, path string
		want         debugWrite
	}{
		{"POST", "/api/v1/namespaces/apps/pods", podCreate},
		{"PATCH", "/api/v1/namespaces/apps/pods/web/ephemeralcontainers", ephemeralWrite},
		{"PUT", "/api/v1/namespaces/apps/pods/web/ephemeralcontainers", ephemeralWrite},
		{"GET", "/api/v1/namespaces/apps/pods/web/ephemeralcontainers", notDebugWrite},
		{"PATCH", "/api/v1/namespaces/apps/pods/web", notDebugWrite},
		{"POST", "/apis/apps/v1/namespaces/apps/deployments", notDebugWrite},
		{"POST", "/apis/example.com/v1/namespaces/apps/pods", notDebugWrite},
		{"POST", "/api/v1/namespaces/apps/pods/", podCreate},
		{"DELETE", "/api/v1/namespaces/apps/pods/web", podDelete},
		{"DELETE", "/api/v1/namespaces/apps/pods", podDelete},
		{"POST", "/api/v1/namespaces/apps/pods/web/eviction", podDelete},
		{"DELETE", "/api/v1/namespaces/apps/pods/web/ephemeralcontainers", notDebugWrite},
		{"DELETE", "/apis/apps/v1/namespaces/apps/deployments/web", notDebugWrite},
	} {
		r := httptest.NewRequest(tc.method, "https://gw"+tc.path, nil)
		info, err := h.requestInfo.NewRequestInfo(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := debugWriteOf(info); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestJudgedBodiesAreBoundedAndPlain(t *testing.T) {
	big := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", kubectldebug.MaxBody+1)))
	_, err := readBody(httptest.NewRecorder(), big)
	if !apierrors.IsRequestEntityTooLargeError(err) {
		t.Errorf("oversized body: %v", err)
	}
	gz := httptest.NewRequest("POST", "/", strings.NewReader("x"))
	gz.Header.Set("Content-Encoding", "gzip")
	if _, err := readBody(httptest.NewRecorder(), gz); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("gzip body: %v", err)
	}
	ok := httptest.NewRequest("POST", "/", strings.NewReader("{}"))
	ok.TransferEncoding = []string{"chunked"}
	body, err := readBody(httptest.NewRecorder(), ok)
	if err != nil || string(body) != "{}" {
		t.Fatalf("%q, %v", body, err)
	}
	setBody(ok, http.MethodPatch, "application/strategic-merge-patch+json", []byte(`{"a":1}`))
	if ok.ContentLength != 7 || ok.Header.Get("Content-Length") != "7" || ok.TransferEncoding != nil || ok.Method != "PATCH" {
		t.Errorf("rewritten request: %d %v %s", ok.ContentLength, ok.TransferEncoding, ok.Method)
	}
}

func TestCreatedIsRecordedOnSuccessOnly(t *testing.T) {
	for _, tc := range []struct {
		code int
		want bool
	}{{201, true}, {200, true}, {403, false}, {409, false}, {0, true}} {
		n := 0
		w := &createdWriter{ResponseWriter: httptest.NewRecorder(), done: func() { n++ }}
		if tc.code != 0 {
			w.WriteHeader(tc.code)
		}
		_, _ = w.Write([]byte("x"))
		w.WriteHeader(201)
		if (n == 1) != tc.want || n > 1 {
			t.Errorf("code %d: recorded %d times", tc.code, n)
		}
	}
}
