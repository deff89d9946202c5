package proxy

import (
	"net/url"
	"testing"

	"k8s.io/apiserver/pkg/endpoints/request"
)

func TestFramesFollowEventBoundaries(t *testing.T) {
	json := &frames{atLineEnd: true}
	for _, c := range []struct {
		write string
		at    bool
	}{{`{"type":"ADDED",`, false}, {`"object":{}}` + "\n", true}, {`{"type"`, false}, {"}\n{}\n", true}} {
		json.observe([]byte(c.write))
		if json.atBoundary() != c.at {
			t.Errorf("json after %q: at boundary %v, want %v", c.write, !c.at, c.at)
		}
	}

	proto := &frames{proto: true}
	frame := func(n int) []byte { return append([]byte{0, 0, 0, byte(n)}, make([]byte, n)...) }
	two := append(frame(3), frame(5)...)
	for _, c := range []struct {
		write []byte
		at    bool
	}{
		{two[:2], false},  // half a length prefix
		{two[2:6], false}, // the rest of it and part of the body
		{two[6:7], true},  // the first frame's last byte
		{two[7:12], false},
		{two[12:], true},
		{frame(0), true},
	} {
		proto.observe(c.write)
		if proto.atBoundary() != c.at {
			t.Errorf("protobuf after %v: at boundary %v, want %v", c.write, !c.at, c.at)
		}
	}
}

// A log is followed whenever the API server would follow it: any follow
// value but "0" and "false" (in any case).
func TestIsFollowReadsFollowAsTheAPIServerDoes(t *testing.T) {
	log := &request.RequestInfo{IsResourceRequest: true, Resource: "pods", Subresource: "log", Verb: "get"}
	for q, want := range map[string]bool{
		"follow=true": true, "follow=1": true, "follow=": true, "follow=yes": true, "follow=True&follow=false": true,
		"follow=false": false, "follow=FALSE": false, "follow=0": false, "": false, "tailLines=5": false,
	} {
		if got := isFollow(log, &url.URL{RawQuery: q}); got != want {
			t.Errorf("%q: followed %v, want %v", q, got, want)
		}
	}
	exec := &request.RequestInfo{IsResourceRequest: true, Resource: "pods", Subresource: "exec"}
	if isFollow(exec, &url.URL{RawQuery: "follow=true"}) || isFollow(nil, &url.URL{RawQuery: "follow=true"}) {
		t.Error("only a pod's log is followed")
	}
}
