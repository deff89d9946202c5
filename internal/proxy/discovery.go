package proxy

import (
	"bytes"
	"mime"
	"net"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/klog/v2"
)

// maxDiscoveryBody bounds what the gateway holds back to rewrite; a real
// /apis is far smaller, even with hundreds of CRD groups.
const maxDiscoveryBody = 8 << 20

// discoveryCodecs read and write the legacy discovery documents in JSON and
// protobuf, registered as kube-apiserver registers them (unversioned v1).
var discoveryCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return serializer.NewCodecFactory(s)
}()

// discoveryRewriter returns a writer that rewrites the target's answer to
// GET /api (APIVersions) and GET /apis (APIGroupList): kube-apiserver names
// its own address there (serverAddressByClientCIDRs), which is the target's
// internal address; the gateway answers with the address the caller used.
// It returns nil for every other request. Aggregated discovery
// (as=APIGroupDiscoveryList) names no addresses and passes unchanged.
func discoveryRewriter(r *http.Request, apiPath string, w http.ResponseWriter) *discoveryWriter {
	switch apiPath {
	case "/api", "/api/", "/apis", "/apis/":
	default:
		return nil
	}
	if r.Method != http.MethodGet || httpstream.IsUpgradeRequest(r) {
		return nil
	}
	// Without the caller's Accept-Encoding the transport asks for gzip
	// itself and hands over the document decompressed.
	r.Header.Del("Accept-Encoding")
	return &discoveryWriter{ResponseWriter: w, address: gatewayAddress(r)}
}

// gatewayAddress is host:port of the gateway as the caller reached it.
func gatewayAddress(r *http.Request) string {
	if r.Host == "" {
		return ""
	}
	if _, _, err := net.SplitHostPort(r.Host); err == nil {
		return r.Host
	}
	if r.TLS != nil {
		return net.JoinHostPort(r.Host, "443")
	}
	return net.JoinHostPort(r.Host, "80")
}

// discoveryWriter holds the response back until it is complete (finish),
// then writes it, rewritten if it is a discovery document. A body larger
// than maxDiscoveryBody streams on unchanged.
type discoveryWriter struct {
	http.ResponseWriter
	address string

	code        int
	buf         bytes.Buffer
	passThrough bool
}

func (d *discoveryWriter) WriteHeader(code int) {
	switch {
	case d.passThrough:
		d.ResponseWriter.WriteHeader(code)
	case code >= 100 && code < 200:
		d.ResponseWriter.WriteHeader(code) // informational, e.g. 103 Early Hints
	case d.code == 0:
		d.code = code
	}
}

func (d *discoveryWriter) Write(b []byte) (int, error) {
	if d.code == 0 && !d.passThrough {
		d.code = http.StatusOK
	}
	if d.passThrough {
		return d.ResponseWriter.Write(b)
	}
	if d.buf.Len()+len(b) <= maxDiscoveryBody {
		return d.buf.Write(b)
	}
	klog.V(2).InfoS("Discovery document too large to rewrite; passing it on unchanged", "limit", maxDiscoveryBody)
	d.passThrough = true
	d.ResponseWriter.WriteHeader(d.code)
	if _, err := d.ResponseWriter.Write(d.buf.Bytes()); err != nil {
		return 0, err
	}
	d.buf = bytes.Buffer{}
	return d.ResponseWriter.Write(b)
}

// finish writes what was held back.
func (d *discoveryWriter) finish() {
	if d.passThrough || d.code == 0 {
		return
	}
	body := d.buf.Bytes()
	if d.code == http.StatusOK {
		if out, ok := rewriteDiscovery(body, d.Header(), d.address); ok {
			body = out
			d.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
	d.ResponseWriter.WriteHeader(d.code)
	_, _ = d.ResponseWriter.Write(body)
}

// rewriteDiscovery replaces the server addresses in an APIVersions or
// APIGroupList document with one entry naming address for every client, or
// with none if address is empty. It reports false, leaving the body as is,
// for anything else: another kind, aggregated discovery, an encoding it
// cannot read.
func rewriteDiscovery(body []byte, h http.Header, address string) ([]byte, bool) {
	if enc := h.Get("Content-Encoding"); enc != "" && enc != "identity" {
		return nil, false
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || params["as"] != "" {
		return nil, false
	}
	info, ok := runtime.SerializerInfoForMediaType(discoveryCodecs.SupportedMediaTypes(), mediaType)
	if !ok {
		return nil, false
	}
	// kube-apiserver writes APIVersions without an apiVersion.
	obj, gvk, err := info.Serializer.Decode(body, &schema.GroupVersionKind{Version: metav1.Unversioned.Version}, nil)
	if err != nil {
		klog.V(4).InfoS("Discovery document not rewritten", "contentType", mediaType, "err", err.Error())
		return nil, false
	}
	var addrs []metav1.ServerAddressByClientCIDR
	if address != "" {
		addrs = []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: address}}
	}
	switch o := obj.(type) {
	case *metav1.APIVersions:
		o.ServerAddressByClientCIDRs = addrs
	case *metav1.APIGroupList:
		for i := range o.Groups {
			if len(o.Groups[i].ServerAddressByClientCIDRs) > 0 {
				o.Groups[i].ServerAddressByClientCIDRs = addrs
			}
		}
	default:
		return nil, false
	}
	obj.GetObjectKind().SetGroupVersionKind(*gvk)
	var out bytes.Buffer
	if err := info.Serializer.Encode(obj, &out); err != nil {
		klog.ErrorS(err, "Encoding a rewritten discovery document", "contentType", mediaType)
		return nil, false
	}
	return out.Bytes(), true
}
