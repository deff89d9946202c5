package recording

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxIovecs is Linux's IOV_MAX: the most buffers one writev takes.
const maxIovecs = 1024

// rawFile is w's descriptor where w is a file.
func rawFile(w io.Writer) syscall.RawConn {
	f, ok := w.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return nil
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writev writes all of bufs to the descriptor, in as few calls as it
// takes, calling wrote after each that wrote something; it waits for room
// where the descriptor is one that can be full (a pipe). It writes from
// bufs' elements as they are, and moves them on past what it wrote.
func writev(raw syscall.RawConn, bufs [][]byte, wrote func()) error {
	var werr error
	err := raw.Write(func(fd uintptr) bool {
		for {
			for len(bufs) > 0 && len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
			if len(bufs) == 0 {
				return true
			}
			n, err := unix.Writev(int(fd), bufs[:min(len(bufs), maxIovecs)])
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return false
			case err != nil:
				werr = err
				return true
			case n == 0:
				werr = io.ErrShortWrite
				return true
			}
			wrote()
			for n > 0 {
				if k := len(bufs[0]); n >= k {
					n -= k
					bufs = bufs[1:]
				} else {
					bufs[0] = bufs[0][n:]
					n = 0
				}
			}
		}
	})
	if err != nil {
		return err
	}
	return werr
}
