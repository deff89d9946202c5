package execpolicy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// gnuSed is the host's GNU sed, which tells what it compiles: with
// --sandbox it refuses a script holding e, r or w (and s///e or s///w)
// before running anything, so the tests below never run what they compile.
func gnuSed(t testing.TB) string {
	t.Helper()
	sed, err := exec.LookPath("sed")
	if err == nil {
		err = exec.Command(sed, "--sandbox", "-n", "p", "/dev/null").Run()
	}
	if err != nil {
		t.Skipf("no GNU sed with --sandbox on this machine (%v): nothing to compare the reading with", err)
	}
	return sed
}

// gnuVerdict compiles scripts (as -e's, in order) with GNU sed in sandbox
// mode: "ok", "sandbox" (it holds e, r or w) or "error" (it is not sed).
func gnuVerdict(t testing.TB, sed string, scripts ...string) string {
	v, _ := gnuRefusal(t, sed, scripts...)
	return v
}

// sandboxAt matches where GNU sed stopped: "-e expression #1, char 7: e/r/w
// commands disabled in sandbox mode".
var sandboxAt = regexp.MustCompile(`char ([0-9]+): e/r/w commands disabled in sandbox mode`)

// gnuRefusal is gnuVerdict, and for "sandbox" how many bytes sed had read
// when it refused: just past an r, R, w or W (command or s flag); past an
// e command; or, for s///e, past the s command's flags.
func gnuRefusal(t testing.TB, sed string, scripts ...string) (string, int) {
	t.Helper()
	args := []string{"--sandbox", "-n"}
	for _, s := range scripts {
		args = append(args, "-e", s)
	}
	cmd := exec.Command(sed, append(args, "/dev/null")...)
	cmd.Env = []string{"LC_ALL=C"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	switch err := cmd.Run(); {
	case err == nil:
		return "ok", 0
	case strings.Contains(stderr.String(), "disabled in sandbox mode"):
		at := 0
		if m := sandboxAt.FindStringSubmatch(stderr.String()); m != nil {
			at, _ = strconv.Atoi(m[1])
		}
		return "sandbox", at
	default:
		return "error", 0
	}
}

// sedScripts are the scripts both readings are checked on: what people
// write, and what an attacker would write to hide an e from a reader that
// splits a script differently from sed (a '/' in a bracket expression, a
// backslash delimiter, text to insert that continues, labels that end at
// a blank).
var sedScripts = []string{
	"p", "1p", "$p", "/x/p", "/x/,/y/p", "1~2p", "0~3p", "/x/I,+3p", "\\%x%p", "\\%x%I p", "1 ! p", "1,3!d",
	"s/a/b/", "s/a/b/g", "s/a/b/ g", "s/a/b/2g", "s/a/b/gpI", "s/a/b/m", "s|a|b|", "s\\a\\b\\g", "s[a[b[",
	"s/[/]/x/", "s/[]/]/x/", "s/[^/]/x/g", "s/[^]/]/x/", "s/[[:alpha:]/]/x/g", "s/[[.-.]/]/x/", "s/[[=a=]/]/x/",
	"s/[a\\]/e/", "s/\\[/]/e", "s/a\\/b/c/", "s/a/b\\\nc/", "s/a\\nb/\\n/", "s/[[:alpha:]/x/",
	"s/[[:al/]pha:]]/e/", "s/[[.a/]/x/", "s/[[:/:]]/e/",
	"y/abc/xyz/", "y/a\\/b/x\\/y/", "y/ab/cd/;e x", "y,a/,b/,",
	"e", "e ls", "1e ls", "1!e ls", "$!{e ls\n}", "s/a/b/e", "s/a/b/ e", "s/a/b/ge", "s/a/b/\r\ne", "s/a/b/\re",
	"s/[/]/w/;e x", "s/[/]/x/;e x", "/[/]/e x", "\\,x,e", "0,/x/e", "1,+2e", "1~0e", "{e}", "1{p;e x}", "1,3!e",
	":a e x", ":a;e", ":a\te", "b end;e x;:end", "t\ne", "T x;e", "bx}e", "{:a}", "{b}", "{:a};e", "v 4.2", "v;e", "v",
	"a foo; e x", "a\\\ne x", "a foo\\\ne x", "a foo\\\\\ne x", "a\\", "a", "i\\\n  e x", "c\\\nfoo\\\ne x\ne y",
	"$!{p};a foo; e echo hi", "a\\e x", "a\\\\\ne x", "1a\\", "i foo",
	"#e x\np", "p#e", "p;#e\ne", "s/a/b/#e", "1{p}", "1{p};p", "{p;}", "{{p}}", "}", "1}",
	"r file", "R file", "w file", "W file", "s/a/b/w file", "r x; e y", "0r x", "s/x/y/w /dev/stdout",
	"l 5", "l", "q5", "q 5", "Q", "L", "F", "z", "=", "l5;e", "q e", "=e", "pe", "p e",
	"/x/{\n s/a/b/\n e x\n}", "/x/{\n s/a/b/\n}\ne", "s/a/b/;e", "n;N;D;g;G;h;H;x;P",
	":a;N;$!ba;s/\\n/ /g", "/^#/d;/^$/d", "s/^[ \t]*//;s/[ \t]*$//", "1!G;h;$!d", "$!N;s/\\n/ /",
	"s/\\(.*\\)@\\(.*\\)/\\2 \\1/", "/start/,/end/{/end/!d}", "s/x/\\U&/g",
	"/x/,", "s/a", "s/a/b", "y/ab/c", "k", "1", "!!p", "s/a/b/x", "p p", "\\\ne", "/x\n/e", "s/a\nb/c/e",
	"s/.*\\c[*/rm -rf \\/x/e#]//", "s/\\cA/x/",
}

// Every script reads as GNU sed reads it: one GNU sed refuses in sandbox
// mode is never read as harmless, and one it compiles is never read as
// running a command or touching a file.
func FuzzSedScriptsReadAsGNUSedReadsThem(f *testing.F) {
	for _, s := range sedScripts {
		f.Add(s)
	}
	sed := gnuSed(f)
	f.Fuzz(func(t *testing.T, script string) {
		if strings.ContainsRune(script, 0) {
			t.Skip("an argument cannot hold a NUL")
		}
		runs, files, bad := readSedScript(script)
		verdict, at := gnuRefusal(t, sed, script)
		switch verdict {
		case "sandbox":
			// What sed refused first: a file command or flag if the byte
			// before where it stopped is r, R, w or W, else an e (so a
			// reading that takes an e for a w file name fails here).
			file := at > 0 && at <= len(script) && strings.IndexByte("rRwW", script[at-1]) >= 0
			if runs == "" && bad == "" && (!file || !files) {
				t.Errorf("%q: GNU sed compiles an e, r or w in it (refused at byte %d), read as runs %q, files %v", script, at, runs, files)
			}
		case "ok":
			// \c is refused on purpose: sed 4.10 reads it otherwise.
			if runs != "" || files || bad != "" && isASCII(script) && !strings.Contains(script, `\c`) {
				t.Errorf("%q: GNU sed compiles it with no e, r or w; read as runs %q, files %v, unreadable %q", script, runs, files, bad)
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Scripts given as several -e's are compiled one after the other: text to
// insert that ends in a backslash continues into the next.
func TestSedScriptsAreReadInTheOrderSedCompilesThem(t *testing.T) {
	sed := gnuSed(t)
	for _, c := range []struct {
		scripts []string
		runs    bool
	}{
		{[]string{"a\\", "e x"}, false},
		{[]string{"a foo\\", "e x"}, false},
		{[]string{"a foo", "e x"}, true},
		{[]string{"p", "e x"}, true},
		{[]string{"s/a/b/", "s/c/d/e"}, true},
		{[]string{"1{", "e x", "}"}, true},
		{[]string{"1{", "p", "}"}, false},
	} {
		args := []string{"-n"}
		for _, s := range c.scripts {
			args = append(args, "-e", s)
		}
		why := sedRunsCommands("sed", args)
		if got := why != ""; got != c.runs {
			t.Errorf("sed %q: %q, want runs %v", args, why, c.runs)
		}
		if gnu := gnuVerdict(t, sed, c.scripts...); (gnu == "sandbox") != c.runs {
			t.Errorf("sed %q: GNU sed's verdict is %s, want runs %v", args, gnu, c.runs)
		}
	}
}

// What GNU sed really runs decides: each command line runs sed (in a
// directory of its own, on a one-line file) with an e command that only
// creates a file, with and without POSIXLY_CORRECT. Those that ran it are
// refused, and those that did not are not. extra is what xargs would
// append.
func TestSedCommandLinesAreReadAsGNUSedReadsThem(t *testing.T) {
	sed := gnuSed(t)
	const run = "1e touch ran"
	for _, c := range []struct {
		args, extra []string
		refused     bool
	}{
		{args: []string{"-n", run, "in"}, refused: true},
		{args: []string{"-e", "p", "-e", run, "in"}, refused: true},
		{args: []string{"-ne", run, "in"}, refused: true},
		{args: []string{"-ne" + run, "in"}, refused: true},
		{args: []string{"--expr=" + run, "in"}, refused: true},
		{args: []string{"--e", run, "in"}, refused: true},
		{args: []string{"-n", "-l", "5", "-s", "-E", "-u", "-z", run, "in"}, refused: true},
		{args: []string{"-n", "p", "-e", run, "in"}, refused: true},
		{args: []string{run, "-e", "p", "in"}, refused: true}, // runs only with POSIXLY_CORRECT
		{args: []string{"-e", run, "--sandbox", "in"}, refused: true},
		{args: []string{"-n", "--", run, "in"}, refused: true},
		{args: []string{"-n", "s/.*/touch ran/e", "in"}, refused: true},
		{args: []string{"-n", "s/[/]/w/;" + run, "in"}, refused: true},
		{args: []string{"-n", "a\\", "-e", run, "in"}, refused: true}, // with an -e, a\ is a file
		{args: []string{"-n", "-e", "a\\", "-e", run, "in"}},          // text, continued into the next -e
		{args: []string{"-n", "p", "in"}},
		{args: []string{"--sandbox", "-e", run, "in"}},
		{args: []string{"--sandbox", run, "in"}},
		{args: []string{"-n", "$a e touch ran", "in"}},
		{args: []string{"-n", "-l", "--", "-e", "p"}, extra: []string{"-e" + run, "in"}, refused: true},
		{args: []string{"-n", "-e", "p"}, extra: []string{"-e" + run, "in"}, refused: true},
		{args: []string{"-n", "--"}, extra: []string{run, "in"}, refused: true},
		{args: []string{"-n", "-e", "p", "--"}, extra: []string{"-e" + run, "in"}},
		{args: []string{"-n", "p", "--"}, extra: []string{"-e" + run, "in"}},
	} {
		ran := false
		for _, env := range [][]string{{"LC_ALL=C"}, {"LC_ALL=C", "POSIXLY_CORRECT=1"}} {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "in"), []byte("line\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(sed, append(append([]string{}, c.args...), c.extra...)...)
			cmd.Dir, cmd.Env = dir, append(env, "PATH=/usr/bin:/bin")
			_ = cmd.Run() // a sed that refuses its arguments runs nothing
			if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
				ran = true
			}
		}
		refused := sedRunsCommands("sed", c.args) != ""
		if c.extra != nil {
			refused = refused || !sedTakesOnlyFiles(c.args)
		}
		if ran != c.refused || refused != c.refused {
			t.Errorf("sed %q + %q: GNU sed ran its command: %v; refused: %v; want both %v", c.args, c.extra, ran, refused, c.refused)
		}
	}
}
