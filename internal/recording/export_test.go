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

// QueueStampedAt queues an event stamped at, as a stream does that took its
// time before another stream and reached the queue after it.
func (r *Recorder) QueueStampedAt(t EventType, data string, at time.Duration) {
	b := append(appendEvent(nil, at, t, []byte(data)), '\n')
	r.enqueue(stamped{&b, at})
}

// WriteBytes is how much of a cast the recorder gathers before it writes.
const WriteBytes = writeBytes
