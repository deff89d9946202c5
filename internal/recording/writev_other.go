//go:build !linux

package recording

import (
	"errors"
	"io"
	"syscall"
)

// maxIovecs bounds the lines gathered for one write.
const maxIovecs = 1024

// rawFile is nil: outside Linux (sgctl's replay) casts are written through
// a buffer.
func rawFile(io.Writer) syscall.RawConn { return nil }

func writev(syscall.RawConn, [][]byte, func()) error { return errors.ErrUnsupported }
