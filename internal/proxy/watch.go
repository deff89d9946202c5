package proxy

import (
	"encoding/binary"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/endpoints/request"
)

// Watches and followed logs stay open: both are held to the session's
// stream lifetimes, and both are told why when the gateway cuts them.

// isWatch: the API server's own reading, whatever spelling of watch=
// (or /watch/ path) the caller chose.
func isWatch(info *request.RequestInfo) bool { return info != nil && info.Verb == "watch" }

// isFollow: a pod's log followed, which stays open as a watch does. The API
// server takes any follow value but "0" and "false" (in any case) as true.
func isFollow(info *request.RequestInfo, u *url.URL) bool {
	if info == nil || info.Resource != "pods" || info.Subresource != "log" {
		return false // before the query is parsed: every GET comes here
	}
	v, ok := u.Query()["follow"]
	return ok && v[0] != "0" && !strings.EqualFold(v[0], "false")
}

// endLog gives a followed log the gateway cut a last line that says why
// (msg), once its status was sent.
func endLog(w *responseWriter, msg string) {
	if w.code != http.StatusOK {
		return
	}
	if _, err := io.WriteString(w.ResponseWriter, "\n"+msg+"\n"); err == nil {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// lastWord tells the caller of a watch or followed log the gateway cut why
// (msg), once its status was sent: a watch ends with an ERROR event and
// then cleanly (true); a log with a last line and then, as the proxy would,
// with its stream reset, so the caller knows it did not end by itself
// (kubectl exits non-zero).
func lastWord(w *responseWriter, msg string) (ended bool) {
	if w.watch {
		return endWatch(w, msg)
	}
	endLog(w, msg)
	return false
}

// watchCodecs encode the one event the gateway adds to a watch: an ERROR
// carrying a Status, as kube-apiserver ends a watch it cannot go on with.
var watchCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(s)
}()

// frames follows a watch response's event boundaries, so that a final
// event is never written into the middle of another: newline-delimited
// JSON, or length-prefixed protobuf.
type frames struct {
	proto bool
	// json: the last byte written ended a line (or nothing was written).
	atLineEnd bool
	// proto: bytes of the current frame still to come, and the length
	// prefix read so far.
	remain int
	hdr    [4]byte
	nhdr   int
}

func (f *frames) observe(b []byte) {
	if !f.proto {
		if len(b) > 0 {
			f.atLineEnd = b[len(b)-1] == '\n'
		}
		return
	}
	for len(b) > 0 {
		if f.remain > 0 {
			n := min(f.remain, len(b))
			f.remain, b = f.remain-n, b[n:]
			continue
		}
		n := copy(f.hdr[f.nhdr:], b)
		f.nhdr, b = f.nhdr+n, b[n:]
		if f.nhdr == len(f.hdr) {
			f.remain, f.nhdr = int(binary.BigEndian.Uint32(f.hdr[:])), 0
		}
	}
}

func (f *frames) atBoundary() bool {
	if f.proto {
		return f.remain == 0 && f.nhdr == 0
	}
	return f.atLineEnd
}

// watchFrames starts following the response once its type is known; nil
// for a media type the gateway does not add events to.
func watchFrames(h http.Header) *frames {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return nil
	}
	switch mt {
	case runtime.ContentTypeJSON:
		return &frames{atLineEnd: true}
	case runtime.ContentTypeProtobuf:
		return &frames{proto: true}
	}
	return nil
}

// endWatch writes an ERROR event with msg as the watch's last, when the
// response is at an event boundary; it reports whether it did.
func endWatch(w *responseWriter, msg string) bool {
	f := w.frames
	if f == nil || !f.atBoundary() {
		return false
	}
	mt, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type"))
	info, ok := runtime.SerializerInfoForMediaType(watchCodecs.SupportedMediaTypes(), mt)
	if !ok || info.StreamSerializer == nil {
		return false
	}
	st := &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Code: http.StatusGone, Reason: metav1.StatusReasonGone, Message: msg,
	}
	obj, err := runtime.Encode(info.Serializer, st)
	if err != nil {
		return false
	}
	enc := streaming.NewEncoder(info.StreamSerializer.Framer.NewFrameWriter(w.ResponseWriter), info.StreamSerializer.Serializer)
	if err := enc.Encode(&metav1.WatchEvent{Type: string(watch.Error), Object: runtime.RawExtension{Raw: obj}}); err != nil {
		return false
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
	return true
}
