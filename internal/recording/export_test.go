package recording

import "time"

// FreeBytes is how much the recorder's spent line buffers hold.
func (r *Recorder) FreeBytes() int {
	r.free.mu.Lock()
	defer r.free.mu.Unlock()
	return r.free.bytes
}

// AppendEvent encodes e after what b holds, as the recorder does into a
// reused buffer.
func AppendEvent(b []byte, e Event) []byte {
	return appendEvent(b, e.Time, e.Type, []byte(e.Data))
}

// SetCloseTimeout shortens how long Close waits for a hung store.
func (r *Recorder) SetCloseTimeout(d time.Duration) { r.closeTimeout = d }
