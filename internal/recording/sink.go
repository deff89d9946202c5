package recording

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Sink stores casts.
type Sink interface {
	// Create starts the cast id; Close on the writer commits it, so a cast
	// is never visible half-written.
	Create(ctx context.Context, id string) (io.WriteCloser, error)
	// Open reads a committed cast.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// Check reports whether the sink can take writes now.
	Check(ctx context.Context) error
	// List returns the casts of one session, oldest first.
	List(ctx context.Context, session string) ([]Info, error)
}

// Info describes a stored cast.
type Info struct {
	ID      string    `json:"id"`
	Session string    `json:"session"`
	Size    int64     `json:"size"`
	Time    time.Time `json:"time"`
}

// SessionOf returns the session a cast ID names (NewID's first part).
func SessionOf(id string) (string, bool) {
	rest, rnd, ok := cutLast(id)
	if !ok || len(rnd) != 8 {
		return "", false
	}
	session, ms, ok := cutLast(rest)
	if !ok || session == "" {
		return "", false
	}
	if _, err := strconv.ParseInt(ms, 10, 64); err != nil {
		return "", false
	}
	return session, true
}

func cutLast(s string) (string, string, bool) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// timeOf is when a cast of that ID started.
func timeOf(id string) time.Time {
	rest, _, _ := cutLast(id)
	_, ms, _ := cutLast(rest)
	n, _ := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n).UTC()
}

// ErrNotFound is a cast that is not there.
var ErrNotFound = errors.New("no such recording")

var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,250}[a-z0-9])?$`)

// ValidID refuses IDs that could name anything but a cast: an ID comes from
// a URL a caller writes.
func ValidID(id string) error {
	if !idPattern.MatchString(id) || strings.Contains(id, "..") {
		return fmt.Errorf("%q is not a recording id", id)
	}
	return nil
}

// NewID names a new cast of a session: sortable by time, never guessed.
func NewID(session string, now time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return session + "-" + strconv.FormatInt(now.UnixMilli(), 10) + "-" + hex.EncodeToString(b)
}

// Dir is a Sink in a local directory: <dir>/<id>.cast, mode 0600.
type Dir string

func (d Dir) path(id string) (string, error) {
	if err := ValidID(id); err != nil {
		return "", err
	}
	return filepath.Join(string(d), id+".cast"), nil
}

// Create writes to a temporary file that Close renames into place.
func (d Dir) Create(_ context.Context, id string) (io.WriteCloser, error) {
	path, err := d.path(id)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(string(d), "."+id+"-*")
	if err != nil {
		return nil, err
	}
	return &committer{File: f, to: path}, nil
}

type committer struct {
	*os.File
	to string
}

func (c *committer) Close() error {
	if err := c.File.Sync(); err != nil {
		_ = c.File.Close()
		return err
	}
	if err := c.File.Close(); err != nil {
		return err
	}
	return os.Rename(c.File.Name(), c.to)
}

// Open opens a committed cast.
func (d Dir) Open(_ context.Context, id string) (io.ReadCloser, error) {
	path, err := d.path(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Check writes and removes a probe file.
func (d Dir) Check(context.Context) error {
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(string(d), ".probe-*")
	if err != nil {
		return fmt.Errorf("the recording directory takes no writes: %w", err)
	}
	_ = f.Close()
	return os.Remove(f.Name())
}

// List finds the session's casts in the directory.
func (d Dir) List(_ context.Context, session string) ([]Info, error) {
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".cast")
		if s, valid := SessionOf(id); !ok || !valid || s != session || e.Type()&os.ModeType != 0 {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Info{ID: id, Session: session, Size: fi.Size(), Time: timeOf(id)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
