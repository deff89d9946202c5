package streams

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestParseOptions(t *testing.T) {
	for _, c := range []struct {
		query string
		want  Options
		err   string
	}{
		{query: "command=ls&stdout=true&stderr=true", want: Options{Stdout: true, Stderr: true}},
		{query: "stdin=1&stdout=1&tty=1&stderr=1", want: Options{Stdin: true, Stdout: true, TTY: true}},
		{query: "stdin=false&stdout=true", want: Options{Stdout: true}},
		{query: "command=ls", err: "at least one of stdin, stdout, stderr"},
		{query: "stdout=yes", err: `stdout: "yes" is not true, false, 1 or 0`},
		// The API server takes each of these as true: the gateway must not
		// read them as false.
		{query: "stdin=&stdout=true", err: `stdin: "" is not`},
		{query: "stdin=t&stdout=true", err: `stdin: "t" is not`},
		{query: "stdin=0&stdin=1&stdout=true", err: "stdin is given 2 times"},
		{query: "stdin=True&tty=TRUE&stdout=true", want: Options{Stdin: true, Stdout: true, TTY: true}},
		// The legacy kubelet names are not PodExecOptions: they grant nothing.
		{query: "input=1&output=1", err: "at least one"},
	} {
		q, err := url.ParseQuery(c.query)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseOptions(q)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.query, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.query, got, err, c.want)
		}
	}
}

func TestResizesStopAtAnEndlessMessage(t *testing.T) {
	in := `{"Width":100,"Height":40}` + "\n" + `{"Width":"` + strings.Repeat("x", 1<<20)
	var got []string
	for s := range resizes(strings.NewReader(in), nil) {
		got = append(got, fmt.Sprintf("%dx%d", s.Width, s.Height))
	}
	if len(got) != 1 || got[0] != "100x40" {
		t.Errorf("sizes %q, want just 100x40", got)
	}
}

func TestTargetQueryCarriesOnlyWhatWasRead(t *testing.T) {
	q, _ := url.ParseQuery("command=sh&command=-c&command=ls&container=main&stdin=True&stdout=1&tty=0&stderr=true&input=1&foo=bar")
	o, err := ParseOptions(q)
	if err != nil {
		t.Fatal(err)
	}
	got := TargetQuery(q, o, true).Encode()
	if want := "command=sh&command=-c&command=ls&container=main&stderr=true&stdin=true&stdout=true&tty=false"; got != want {
		t.Errorf("exec query %s, want %s", got, want)
	}
	if got := TargetQuery(q, o, false).Encode(); strings.Contains(got, "command") {
		t.Errorf("attach query %s carries a command", got)
	}
}
