package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/apistatus"
	"sessiongate.dev/sessiongate/internal/audit"
	"sessiongate.dev/sessiongate/internal/kubectldebug"
	"sessiongate.dev/sessiongate/internal/registry"
)

// DebugConfig is what the proxy needs in kubectl-debug mode.
type DebugConfig struct {
	// Gateway names the installation, for the labels of the pods it lets
	// a debug session create.
	Gateway string
	// Recorder appends what was created to the session's status.debug;
	// nil records nothing.
	Recorder *kubectldebug.Recorder
}

// debugWrite is a request kubectl-debug mode judges.
type debugWrite int

const (
	notDebugWrite debugWrite = iota
	podCreate
	ephemeralWrite
	// podDelete: a delete, a delete of the collection, or an eviction.
	podDelete
)

func debugWriteOf(info *request.RequestInfo) debugWrite {
	if info == nil || !info.IsResourceRequest || info.APIGroup != "" || info.Resource != "pods" {
		return notDebugWrite
	}
	switch {
	case info.Subresource == "" && info.Verb == "create":
		return podCreate
	case info.Subresource == "ephemeralcontainers" && (info.Verb == "patch" || info.Verb == "update"):
		return ephemeralWrite
	case info.Subresource == "" && (info.Verb == "delete" || info.Verb == "deletecollection"),
		info.Subresource == "eviction" && info.Verb == "create":
		return podDelete
	}
	return notDebugWrite
}

// debugLookupTimeout bounds the reads on the target a judgement needs.
const debugLookupTimeout = 10 * time.Second

// kubectlDebug judges what a debug session creates — pods, and ephemeral
// containers — before the target sees it, with the same rules as the REST
// API, and replaces the body with the gateway's own encoding of what it
// judged (a created pod labelled for the session); and it lets a debug
// session, whatever its mode, delete or evict only the pods it created. It
// returns false when it has answered the request. Sessions that are not
// debug sessions pass.
func (h *Handler) kubectlDebug(c *call, r *http.Request, s *registry.Session, lim registry.Limits, info *request.RequestInfo) bool {
	op := debugWriteOf(info)
	if lim.Debug == nil || op == notDebugWrite {
		return true
	}
	refuse := func(err error) bool {
		var ke *kubectldebug.Error
		if !errors.As(err, &ke) {
			var st *apierrors.StatusError
			if errors.As(err, &st) {
				// The target's own answer to a read the judgement needed.
				apistatus.Write(c.w, st)
				return false
			}
			klog.ErrorS(err, "Judging a kubectl debug request", "session", s.Name)
			apistatus.Write(c.w, apierrors.NewInternalError(errors.New("the request could not be judged")))
			return false
		}
		if ke.Rule != "" {
			c.ev.Annotations[audit.AnnotationRefusedBy] = "kubectlDebug." + ke.Rule
		}
		klog.V(4).InfoS("Refused kubectl debug request", "session", s.Name, "rule", ke.Rule, "field", ke.Field)
		apistatus.Write(c.w, ke.Status("pods", info.Name))
		return false
	}
	chk := kubectldebug.New(lim.Debug)
	if op == podDelete {
		// Whatever the mode, and past the most a session may create.
		if err := chk.CheckPodDelete(info.Namespace, info.Name); err != nil {
			return refuse(err)
		}
		return true
	}
	if err := chk.CheckMode(); err != nil {
		return refuse(err)
	}
	if err := chk.CheckNamespace(info.Namespace); err != nil {
		return refuse(err)
	}
	body, err := readBody(c.w, r)
	if err != nil {
		return refuse(err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), debugLookupTimeout)
	defer cancel()
	var (
		created     []v1alpha1.DebugCreated
		out, ctype  string
		by          = c.ev.User.Username
		now         = h.Now()
		forwardBody []byte
	)
	switch op {
	case podCreate:
		var pod *corev1.Pod
		pod, created, err = h.judgePodCreate(ctx, r, s, chk, info, body, by, now)
		if err == nil {
			forwardBody, err = json.Marshal(pod)
		}
		out, ctype = r.Method, "application/json"
	case ephemeralWrite:
		created, forwardBody, err = h.judgeEphemeral(ctx, r, s, chk, info, body, by, now)
		// What was judged is added by a strategic merge patch, whichever
		// write the caller sent.
		out, ctype = http.MethodPatch, "application/strategic-merge-patch+json"
	}
	if err != nil {
		return refuse(err)
	}
	setBody(r, out, ctype, forwardBody)
	c.ev.Annotations[kubectldebug.AnnotationCreated] = kubectldebug.Describe(created)
	if h.Debug.Recorder != nil && !isDryRun(r) {
		c.w.ResponseWriter = &createdWriter{ResponseWriter: c.w.ResponseWriter, done: func() { h.recordCreated(s, created) }}
	}
	return true
}

func (h *Handler) judgePodCreate(ctx context.Context, r *http.Request, s *registry.Session, chk *kubectldebug.Checker, info *request.RequestInfo, body []byte, by string, now time.Time) (*corev1.Pod, []v1alpha1.DebugCreated, error) {
	pod, err := kubectldebug.DecodePod(r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, nil, err
	}
	if pod.Namespace == "" {
		pod.Namespace = info.Namespace
	}
	if pod.Namespace != info.Namespace {
		return nil, nil, &kubectldebug.Error{Field: "metadata.namespace", Invalid: true, Message: fmt.Sprintf("metadata.namespace %q does not match the namespace of the request, %q", pod.Namespace, info.Namespace)}
	}
	if pod.Name == "" && pod.GenerateName != "" {
		// Named here, so that what is recorded is what the target makes.
		pod.Name, pod.GenerateName = pod.GenerateName+utilrand.String(5), ""
	}
	if pod.Name == "" {
		return nil, nil, &kubectldebug.Error{Field: "metadata.name", Invalid: true, Message: "metadata.name: a pod needs a name"}
	}
	// What the target gets: none of the caller's metadata, no token.
	kind := kubectldebug.Sanitize(pod)
	// The target is read as the session, with its own rights.
	b := s.Backend()
	kube, err := kubectldebug.TargetClient(b.URL, b.Token, b.Transport)
	if err != nil {
		return nil, nil, err
	}
	var sources []corev1.Pod
	if kind == kubectldebug.KindPodCopy {
		list, err := kube.CoreV1().Pods(pod.Namespace).List(ctx, metav1.ListOptions{Limit: 500})
		if err != nil {
			return nil, nil, err
		}
		sources = list.Items
	}
	kind, source, err := chk.CheckPodCreate(pod, sources)
	if err != nil {
		return nil, nil, err
	}
	if kind == kubectldebug.KindNodePod {
		if err := chk.CheckNodeLabelsOn(ctx, kube, "spec.nodeName", pod.Spec.NodeName); err != nil {
			return nil, nil, err
		}
	}
	kubectldebug.Label(pod, kubectldebug.Owner{Gateway: h.Debug.Gateway, Namespace: s.Namespace, Name: s.Name, UID: s.UID}, kind)
	dc := kubectldebug.DebugContainer(pod, source)
	return pod, []v1alpha1.DebugCreated{kubectldebug.Created(kind, pod.Namespace, pod.Name, dc.Name, dc.Image, by, now)}, nil
}

func (h *Handler) judgeEphemeral(ctx context.Context, r *http.Request, s *registry.Session, chk *kubectldebug.Checker, info *request.RequestInfo, body []byte, by string, now time.Time) ([]v1alpha1.DebugCreated, []byte, error) {
	b := s.Backend()
	kube, err := kubectldebug.TargetClient(b.URL, b.Token, b.Transport)
	if err != nil {
		return nil, nil, err
	}
	before, err := kube.CoreV1().Pods(info.Namespace).Get(ctx, info.Name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	after, err := kubectldebug.ApplyEphemeral(before, r.Method, r.Header.Get("Content-Type"), body)
	if err != nil {
		return nil, nil, err
	}
	added, err := chk.CheckEphemeral(before, after)
	if err != nil {
		return nil, nil, err
	}
	patch, err := kubectldebug.EphemeralPatch(added)
	if err != nil {
		return nil, nil, err
	}
	created := make([]v1alpha1.DebugCreated, len(added))
	for i, ec := range added {
		created[i] = kubectldebug.Created(kubectldebug.KindEphemeral, before.Namespace, before.Name, ec.Name, ec.Image, by, now)
	}
	return created, patch, nil
}

// readBody reads a body the gateway judges, up to kubectldebug.MaxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, &kubectldebug.Error{Code: http.StatusUnsupportedMediaType, Invalid: true, Message: fmt.Sprintf("a debug session's request bodies are judged, and the gateway does not read Content-Encoding %q", ce)}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, kubectldebug.MaxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("a debug session's pod or ephemeral container request may be at most %d bytes", kubectldebug.MaxBody))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest("reading the request body: " + err.Error())
	}
	return body, nil
}

// setBody makes r carry body, of contentType, with method.
func setBody(r *http.Request, method, contentType string, body []byte) {
	r.Method = method
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	r.Header.Del("Content-Encoding")
}

func isDryRun(r *http.Request) bool { return len(r.URL.Query()["dryRun"]) > 0 }

// recordCreated appends to the session's status what the target accepted,
// off the request path: the caller has its answer already.
func (h *Handler) recordCreated(s *registry.Session, created []v1alpha1.DebugCreated) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.Debug.Recorder.Record(ctx, s.Namespace, s.Name, s.UID, created...); err != nil {
			klog.ErrorS(err, "Recording what kubectl debug created", "session", s.Name, "created", kubectldebug.Describe(created))
			return
		}
		klog.V(2).InfoS("Kubectl debug created", "session", s.Name, "created", kubectldebug.Describe(created))
	}()
}

// createdWriter calls done once if the target answers with success.
type createdWriter struct {
	http.ResponseWriter
	done    func()
	decided bool
}

func (w *createdWriter) WriteHeader(code int) {
	if !w.decided {
		w.decided = true
		if code >= 200 && code < 300 {
			w.done()
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *createdWriter) Write(b []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *createdWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
