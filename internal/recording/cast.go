// Package recording keeps exec and attach streams as asciicast v2 files
// (https://docs.asciinema.org/manual/asciicast/v2/): what the user typed
// (input events), what the container answered on stdout and stderr (output
// events) and terminal resizes, each with its time since the start. A Recorder
// never makes the stream wait for storage: events go through a bounded buffer
// to a Sink (a local directory or an S3-compatible object store) in the
// background.
package recording

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Meta says whose stream a cast is; it is the cast header's "sessiongate"
// field, next to the standard ones.
type Meta struct {
	ID        string   `json:"id"`
	Session   string   `json:"session"`
	User      string   `json:"user"`
	Cluster   string   `json:"cluster"`
	Namespace string   `json:"namespace"`
	Pod       string   `json:"pod"`
	Container string   `json:"container,omitempty"`
	Command   []string `json:"command,omitempty"`
	// Kind is exec or attach.
	Kind string `json:"kind"`
	TTY  bool   `json:"tty"`
}

// Header is the first line of a cast.
type Header struct {
	Version     int               `json:"version"`
	Width       int               `json:"width"`
	Height      int               `json:"height"`
	Timestamp   int64             `json:"timestamp"`
	Title       string            `json:"title,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Sessiongate Meta              `json:"sessiongate"`
}

// EventType is an asciicast v2 event code.
type EventType string

const (
	Output EventType = "o"
	Input  EventType = "i"
	Resize EventType = "r"
)

// Event is one line after the header: [seconds, code, data].
type Event struct {
	Time time.Duration
	Type EventType
	Data string
}

// MarshalJSON writes the event as asciicast's three-element array.
func (e Event) MarshalJSON() ([]byte, error) {
	return appendEvent(nil, e.Time, e.Type, []byte(e.Data)), nil
}

// appendEvent adds an event's JSON to b, by hand: it is the recorder's hot
// path, where encoding/json's reflection and re-scanning cost more than
// the stream itself.
func appendEvent(b []byte, at time.Duration, t EventType, data []byte) []byte {
	b = appendTime(append(b, '['), at)
	b = append(b, ',', '"')
	b = appendEscaped(b, []byte(t))
	b = append(b, '"', ',', '"')
	b = appendEscaped(b, data)
	return append(b, '"', ']')
}

// appendTime adds an event's time, in seconds to the microsecond.
func appendTime(b []byte, at time.Duration) []byte {
	return strconv.AppendFloat(b, at.Seconds(), 'f', 6, 64)
}

const hexDigits = "0123456789abcdef"

// escapeExtra is how many bytes escaping adds to each byte: valid UTF-8
// (the recorder makes stream bytes so) needs only quotes, backslashes and
// control characters escaped.
var escapeExtra = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = 5 // \u00XX
	}
	for _, c := range []byte{'"', '\\', '\n', '\r', '\t'} {
		t[c] = 1
	}
	return t
}()

// appendEscaped adds s as the inside of a JSON string. Runs of plain bytes
// are copied whole, and so are runs of one control character (the NULs of
// a binary stream): their first escape is copied over the rest, doubling.
// b grows to hold s as it is, and, if a run outgrows that, once more to
// hold all the rest escaped: growing six bytes at a time would copy b over
// and over.
func appendEscaped(b, s []byte) []byte {
	b = slices.Grow(b, len(s)+2)
	start := 0
	// uint: i moves on by runs too, and the compiler checks s[i]'s bounds
	// in this, the hot loop, unless it can see i is never negative.
	for i := 0; uint(i) < uint(len(s)); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		if start < i {
			b = append(b, s[start:i]...)
		}
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b, i = appendControlRun(b, s, i)
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// appendControlRun adds the run of s[i] (a control character) that starts
// at i, escaped, and returns the run's last index.
func appendControlRun(b, s []byte, i int) ([]byte, int) {
	c := s[i]
	j := i + 1
	for j < len(s) && s[j] == c {
		j++
	}
	if cap(b)-len(b) < 6*(j-i)+len(s)-j {
		b = growForRest(b, s[i:])
	}
	n := len(b)
	b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
	b = b[:n+6*(j-i)]
	for done := 6; done < len(b)-n; done *= 2 {
		copy(b[n+done:], b[n:n+done])
	}
	return b, j - 1
}

// growForRest makes room in b for s escaped.
func growForRest(b, s []byte) []byte {
	n := 0
	for _, c := range s {
		n += 1 + int(escapeExtra[c])
	}
	return slices.Grow(b, n)
}

// UnmarshalJSON reads the three-element array.
func (e *Event) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if len(raw) != 3 {
		return fmt.Errorf("an event has %d elements, want 3", len(raw))
	}
	var secs float64
	if err := json.Unmarshal(raw[0], &secs); err != nil {
		return err
	}
	e.Time = time.Duration(secs * float64(time.Second))
	if err := json.Unmarshal(raw[1], &e.Type); err != nil {
		return err
	}
	return json.Unmarshal(raw[2], &e.Data)
}

// Cast is a whole recording, as Read returns it.
type Cast struct {
	Header Header
	Events []Event
}

// Read parses a cast.
func Read(r io.Reader) (*Cast, error) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 16<<20)
	if !s.Scan() {
		if err := s.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("empty cast")
	}
	c := &Cast{}
	if err := json.Unmarshal(s.Bytes(), &c.Header); err != nil {
		return nil, fmt.Errorf("cast header: %w", err)
	}
	if c.Header.Version != 2 {
		return nil, fmt.Errorf("asciicast version %d, want 2", c.Header.Version)
	}
	for n := 2; s.Scan(); n++ {
		var e Event
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("cast line %d: %w", n, err)
		}
		c.Events = append(c.Events, e)
	}
	return c, s.Err()
}

// text makes stream bytes a JSON string's content without losing them:
// valid UTF-8 stays as it is (and b itself is returned); a stray byte
// becomes U+FFFD, as a terminal would show it. Multi-byte characters split
// across two reads are joined by the recorder.
func text(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return []byte(string([]rune(string(b))))
}
