package proxy

import "testing"

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
