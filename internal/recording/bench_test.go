package recording

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkEncodeEvent is the recorder's cost per byte of terminal output
// written to a cast: the hand-written encoding, into a reused buffer and a
// new one, against encoding/json's, for text and for NULs (which JSON
// writes as six bytes each).
func BenchmarkEncodeEvent(b *testing.B) {
	for name, data := range map[string]string{"text": strings.Repeat("drwxr-xr-x 2 root root 4096 ls -la\r\n", 900), "nul": string(make([]byte, 32<<10))} {
		e := Event{Time: 1234567 * time.Microsecond, Type: Output, Data: data}
		b.Run(name+"/append", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var buf []byte
			raw := []byte(e.Data) // as the recorder queues it
			for b.Loop() {
				buf = appendEvent(buf[:0], e.Time, e.Type, raw)
			}
		})
		// A buffer the recorder did not keep: it grows to the line's length.
		b.Run(name+"/append-new-buffer", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			raw := []byte(e.Data)
			for b.Loop() {
				_ = appendEvent(nil, e.Time, e.Type, raw)
			}
		})
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				_, _ = json.Marshal([]any{json.Number(strconv.FormatFloat(e.Time.Seconds(), 'f', 6, 64)), e.Type, e.Data})
			}
		})
	}
}
