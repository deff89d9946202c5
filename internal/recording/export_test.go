package recording

// FreeBytes is how much the recorder's spent line buffers hold.
func (r *Recorder) FreeBytes() int {
	r.free.mu.Lock()
	defer r.free.mu.Unlock()
	return r.free.bytes
}
