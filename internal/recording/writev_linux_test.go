package recording

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// writev gets every buffer to the descriptor in order: more buffers than
// one call takes, and through a pipe that is full long before the end, so
// that calls write part of what they were given and wait for room.
func TestWritevWritesEveryBufferInOrder(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var bufs [][]byte
	var want []byte
	for i := range 3 * maxIovecs {
		// Now and then an empty one, which writes nothing.
		b := bytes.Repeat([]byte{'a' + byte(i%26)}, i%997)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	read := make(chan []byte)
	go func() {
		got, _ := io.ReadAll(r)
		read <- got
	}()
	raw, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	if err := writev(raw, bufs, func() { calls++ }); err != nil {
		t.Fatal(err)
	}
	if calls < 3 {
		t.Errorf("%d calls wrote %d buffers to a pipe that holds 64 KiB", calls, len(bufs))
	}
	_ = w.Close()
	if got := <-read; !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written, in order", len(got), len(want))
	}
}
