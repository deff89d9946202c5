package execpolicy_test

import (
	"strings"
	"testing"

	"sessiongate.dev/sessiongate/internal/execpolicy"
)

func TestDenyRulesSeeThroughPathsWrappersShellsAndQuotes(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm", "dd", "/usr/sbin/shutdown"}}
	refused := [][]string{
		{"rm", "-rf", "/"},
		{"/bin/rm", "x"},
		{"/bin/../bin/rm", "x"},
		{"//bin//rm", "x"},
		{"./rm", "x"},
		{"../../bin/rm", "x"},
		{"env", "rm", "x"},
		{"env", "-i", "FOO=bar", "-u", "HOME", "rm", "x"},
		{"/usr/bin/env", "--", "A=1", "rm"},
		{"nice", "-n", "5", "rm", "x"},
		{"nice", "-5", "rm", "x"},
		{"timeout", "10", "rm", "x"},
		{"timeout", "-s", "KILL", "--preserve-status", "5s", "dd", "if=/dev/zero"},
		{"nohup", "rm", "x"},
		{"busybox", "rm", "x"},
		{"xargs", "rm"},
		{"xargs", "-0", "-n", "1", "rm", "-f"},
		{"stdbuf", "-o0", "rm", "x"},
		{"setsid", "rm"},
		{"env", "nice", "timeout", "3", "busybox", "rm"},
		{"sh", "-c", "rm -rf /tmp/x"},
		{"bash", "-ec", "echo hi; rm x"},
		{"sh", "-c", "ls && rm x"},
		{"sh", "-c", "ls | xargs rm"},
		{"sh", "-c", "'r'm x"},
		{"sh", "-c", `"rm" x`},
		{"sh", "-c", `r\m x`},
		{"sh", "-c", "FOO=1 rm x"},
		{"sh", "-c", "if true; then rm x; fi"},
		{"sh", "-c", "(rm x)"},
		{"sh", "-c", "{ rm x; }"},
		{"sh", "-c", "exec rm x"},
		{"sh", "-c", "command rm x"},
		{"sh", "-c", "ls >/dev/null 2>&1; rm x"},
		{"sh", "-c", "sh -c 'rm x'"},
		{"busybox", "sh", "-c", "rm x"},
		{"/usr/sbin/shutdown", "-h", "now"},
	}
	for _, argv := range refused {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed {
			t.Errorf("%q was allowed", argv)
		}
	}
	// Undecidable: refused while the policy has rules, whatever they are.
	undecidable := [][]string{
		{"sh", "-c", "$(echo rm) x"},
		{"sh", "-c", "`echo rm` x"},
		{"sh", "-c", "$CMD x"},
		{"sh", "-c", "rm${IFS}x"},
		{"sh", "-c", "eval 'rm x'"},
		{"sh", "-c", "echo rm x | sh"},
		{"sh", "-c", "cat <(rm x)"},
		{"sh", "-c", "for f in a; do rm $f; done"},
		{"sh", "script.sh"},
		{"env", "-S", "rm x"},
		{"sudo", "rm", "x"},
		{"find", ".", "-exec", "rm", "{}", ";"},
		{"python3", "-c", "import os; os.system('rm x')"},
		{"perl", "-e", "unlink 'x'"},
		{"awk", "BEGIN { system(\"rm x\") }"},
		{"timeout", "--unknown-flag", "rm"},
		{"sh", "-c", "echo 'unterminated"},
	}
	for _, argv := range undecidable {
		d := p.Check(argv, execpolicy.NoStdin)
		if d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
	// A policy may let the undecidable through: then only what can be seen
	// is judged.
	lenient := execpolicy.Policy{Deny: p.Deny, AllowUndecidable: true}
	if d := lenient.Check([]string{"sh", "-c", "$(echo rm) x"}, execpolicy.NoStdin); !d.Allowed {
		t.Errorf("allowUndecidable: %v", d)
	}
	if d := lenient.Check([]string{"sh", "-c", "rm x"}, execpolicy.NoStdin); d.Allowed {
		t.Errorf("allowUndecidable let a visible rm through")
	}
	allowed := [][]string{
		{"ls", "-l"},
		{"cat", "/etc/rm"},
		{"echo", "rm"},
		{"sh"},
		{"bash", "-l"},
		{"sh", "-c", "ls -l | grep rm > /tmp/rm.txt"},
		{"sh", "-c", `echo "$HOME"`},
		{"env"},
		{"xargs", "echo"},
		{"find", ".", "-name", "rm"},
		{"awk", "{print $1}", "file"},
		{"python3", "app.py"},
		{"/usr/bin/shutdownx"},
	}
	for _, argv := range allowed {
		if d := p.Check(argv, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("%q: %v, want allowed", argv, d)
		}
	}
}

// A program that runs what its input gives it is seen into only when that
// input cannot carry a program: echo 'rm -rf /x' | kubectl exec -i pod --
// sh would otherwise run anything past any rule.
func TestWhatReadsItsProgramFromAPipeIsUndecidable(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm", "dd"}}
	fedByTheCaller := [][]string{
		{"sh"},
		{"/bin/bash", "-l"},
		{"sh", "-s"},
		{"sh", "-s", "--", "arg"},
		{"bash", "--norc", "-i"},
		{"env", "sh"},
		{"busybox", "sh"},
		{"nice", "-n", "5", "bash"},
		{"python3"},
		{"python3", "-W", "ignore"},
		{"python3", "-m", "code"},
		{"dash", "-cs", "true"},
		{"make", "-f", "-"},
		{"python3", "-"},
		{"python3", "/dev/stdin"},
		{"python3.11"},
		{"nodejs"},
		{"perl"},
		{"node", "-"},
		{"/usr/bin/ruby"},
		{"psql", "-h", "db"},
		{"sqlite3", "app.db"},
		{"busybox", "ed"},
		{"xargs", "sh"},
		{"xargs", "sh", "-c"},
		{"xargs", "env"},
		{"xargs", "nice"},
		{"xargs", "find"},
		{"xargs", "python3"},
		{"env", "xargs", "python3"},
	}
	for _, argv := range fedByTheCaller {
		if d := p.Check(argv, execpolicy.Pipe); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q on a pipe: %v, want refused as undecidable", argv, d)
		}
	}
	// Within a script, a pipe or an input redirection feeds a command
	// whatever the caller sends.
	fedByTheScript := []string{
		"echo rm x | sh",
		"echo rm x | env sh",
		"echo rm x | busybox sh",
		"echo rm x | nice bash",
		"echo rm x |& sh",
		"echo rm x | (sh)",
		"echo rm x | { sh; }",
		"echo -c 'rm x' | xargs sh",
		"echo 'import os' | python3",
		"sh < /tmp/script",
		"< /tmp/script sh",
		"sh 0<&3",
		"sh <<< 'rm x'",
		"python3 <<< 'import os'",
		"ls; sh < /tmp/script",
	}
	for _, script := range fedByTheScript {
		for _, in := range []execpolicy.Stdin{execpolicy.NoStdin, execpolicy.Pipe, execpolicy.Terminal} {
			if d := p.Check([]string{"sh", "-c", script}, in); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
				t.Errorf("sh -c %q (stdin %d): %v, want refused as undecidable", script, in, d)
			}
		}
	}
	// What reads nothing, or a terminal (an interactive session, which rules
	// cannot see into and forbidInteractive refuses), is itself; so is a
	// program that reads only data from a pipe.
	for _, c := range []struct {
		argv []string
		in   execpolicy.Stdin
	}{
		{[]string{"sh"}, execpolicy.NoStdin},
		{[]string{"sh"}, execpolicy.Terminal},
		{[]string{"bash", "-l"}, execpolicy.Terminal},
		{[]string{"python3"}, execpolicy.Terminal},
		{[]string{"python3", "app.py"}, execpolicy.NoStdin},
		{[]string{"xargs", "echo"}, execpolicy.NoStdin},
		{[]string{"sh", "-c", "python3 app.py && ls"}, execpolicy.NoStdin},
		{[]string{"sh", "-c", "sh"}, execpolicy.NoStdin},
		{[]string{"sh", "-c", "ls -l | grep x > /tmp/out"}, execpolicy.Pipe},
		{[]string{"tee", "/tmp/out"}, execpolicy.Pipe},
		{[]string{"cat"}, execpolicy.Pipe},
		{[]string{"sh", "-c", "cat > /tmp/out"}, execpolicy.Pipe},
		// Common pipelines: what xargs runs gets arguments, not a program;
		// an interpreter given its program reads data.
		{[]string{"xargs"}, execpolicy.Pipe},
		{[]string{"xargs", "-0", "kill"}, execpolicy.Pipe},
		{[]string{"sh", "-c", "pgrep x | xargs kill"}, execpolicy.NoStdin},
		{[]string{"sh", "-c", "curl -s localhost:8080/status | python3 -m json.tool"}, execpolicy.NoStdin},
		{[]string{"python3", "manage.py", "loaddata", "-"}, execpolicy.Pipe},
		{[]string{"bash", "-o", "pipefail", "-c", "ls | wc -l"}, execpolicy.NoStdin},
		{[]string{"python3", "-u", "app.py"}, execpolicy.Pipe},
		{[]string{"perl", "-I", "lib", "script.pl"}, execpolicy.Pipe},
		{[]string{"perl", "-I/usr/local/lib", "x.pl"}, execpolicy.NoStdin},
		{[]string{"node", "--max-old-space-size=4096", "app.js"}, execpolicy.Pipe},
		{[]string{"node", "app.js", "-p", "8080"}, execpolicy.NoStdin},
		{[]string{"python3", "app.py", "-c", "conf.yaml"}, execpolicy.NoStdin},
		{[]string{"python3", "-Wignore::DeprecationWarning", "app.py"}, execpolicy.NoStdin},
		{[]string{"python3", "-m", "gunicorn", "-c", "conf.py", "app:app"}, execpolicy.NoStdin},
		{[]string{"xargs", "-0r", "kill"}, execpolicy.Pipe},
		{[]string{"xargs", "-rn1", "kill"}, execpolicy.Pipe},
		{[]string{"xargs", "--max-args", "1", "kill"}, execpolicy.Pipe},
		{[]string{"sh", "-c", "[ -f x ] && cat x"}, execpolicy.NoStdin},
		{[]string{"less", "/var/log/app.log"}, execpolicy.Pipe},
		{[]string{"sh", "-s"}, execpolicy.NoStdin},
	} {
		if d := p.Check(c.argv, c.in); !d.Allowed {
			t.Errorf("%q (stdin %d): %v, want allowed", c.argv, c.in, d)
		}
	}
	// A script with a pipe still has its rules applied where they can be.
	if d := p.Check([]string{"sh", "-c", "ls | rm x"}, execpolicy.NoStdin); d.Allowed || d.Rule != "deny rm" {
		t.Errorf("ls | rm x: %v, want refused by deny rm", d)
	}
	// With no rules there is nothing to see into.
	if d := (execpolicy.Policy{}).Check([]string{"sh"}, execpolicy.Pipe); !d.Allowed {
		t.Errorf("an empty policy refused sh on a pipe: %v", d)
	}
	if d := (execpolicy.Policy{Deny: []string{"rm"}, AllowUndecidable: true}).Check([]string{"sh"}, execpolicy.Pipe); !d.Allowed {
		t.Errorf("allowUndecidable refused sh on a pipe: %v", d)
	}
}

// Ways to run code that no stdin carries but the command line hides: an
// option's value taken for the script, the environment a program reads its
// startup code from, a program file, a placeholder filled in from a file.
func TestCodeOutsideTheCommandLineIsUndecidable(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	for _, argv := range [][]string{
		{"bash", "-co", "pipefail", "rm -rf /x"},
		{"bash", "-sc", "rm -rf /x"}, // -s does not hide the -c string
		{"bash", "-c", "-s", "rm -rf /x"},
		{"rbash", "-c", "rm -rf /x"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || d.Rule != "deny rm" {
			t.Errorf("%q: %v, want refused by deny rm", argv, d)
		}
	}
	for _, argv := range [][]string{
		{"env", "BASH_FUNC_ls%%=() { rm -rf /x; }", "bash", "-c", "ls"},
		{"env", "BASH_ENV=/tmp/x", "bash", "-c", "true"},
		{"env", "--", "LD_PRELOAD=/tmp/x.so", "ls"},
		{"env", "PERL5OPT=-Mstrict", "perl", "app.pl"},
		{"sh", "-c", "BASH_ENV=/tmp/x bash -c true"},
		{"sh", "-c", "export BASH_ENV=/tmp/x; bash -c true"},
		{"sh", "-c", "declare -x PS4='$(rm x)'; set -x; ls"},
		{"bash", "--rcfile", "/tmp/x", "-ic", "true"},
		{"bash", "--init-file=/tmp/x", "-ic", "true"},
		{"xargs", "-a", "/tmp/args", "sh"},
		{"xargs", "-I%", "sh", "-c", "%"},
		{"xargs", "--replace", "sh", "-c", "{}"},
		{"awk", "-f", "/tmp/prog.awk"},
		{"sed", "-f", "/tmp/script.sed", "file"},
		{"python3.11", "-c", "import os"},
		{"python3", "-Bc", "import os"},
		{"perl", "-ne", "unlink 'x'"},
		{"perl", "-le", "unlink 'x'"},
		{"perl", "-Ilib", "-e", "unlink 'x'"},
		{"ruby", "-Ilib", "-e", "File.delete('x')"},
		{"perl", "-MPOSIX", "app.pl"},
		{"node", "-p", "require('fs')"},
		{"node", "--eval=1"},
		{"php", "-r", "unlink('x');"},
		{"sh", "-c", "trap 'rm -rf /x' EXIT"},
		{"bash", "-c", "builtin eval 'rm -rf /x'"},
		{"bash", "-c", "hash -p /bin/rm ls; ls -rf /x"},
		{"sh", "-c", "alias x=rm\nx -rf /x"},
		{"bash", "-c", "mapfile -C 'rm -rf /x #' -c1 </etc/hostname"},
		{"python3", "-m", "timeit", "-n1", "__import__('os').system('rm -rf /x')"},
		{"python3.7m", "-c", "import os"},
		{"ipython3", "-c", "import os"},
		{"luajit-2.1.0-beta3", "-e", "os.execute('rm')"},
		{"pwsh", "-c", "Remove-Item x"},
		{"deno", "eval", "Deno.remove('x')"},
		{"php", "-d", "auto_prepend_file=/tmp/x", "/dev/null"},
		{"node", "--experimental-loader=data:x", "app.js"},
		{"awk", "-f/tmp/prog"},
		{"gawk", "-E", "/tmp/prog"},
		{"sed", "-nf", "/tmp/s", "f"},
		{"sed", "-n", "--fil=/tmp/s", "f"},
		{"env", "PERL5DB=BEGIN{system q(rm)}", "perl", "-d", "/dev/null"},
		{"env", "LUA_INIT=os.execute'rm'", "lua", "app.lua"},
		{"env", "PAGER=sh -c 'rm -rf /x'", "git", "log"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
}

func TestARefusalNamesItsRule(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm -rf *", "dd"}}
	if d := p.Check([]string{"env", "rm", "-rf", "/"}, execpolicy.NoStdin); d.Allowed || d.Rule != "deny rm -rf *" || strings.Join(d.Command, " ") != "rm -rf /" {
		t.Errorf("%+v", d)
	}
	if d := p.Check([]string{"rm", "-r", "x"}, execpolicy.NoStdin); !d.Allowed {
		t.Errorf("rm -r is not rm -rf *: %v", d)
	}
	if d := p.Check([]string{"/bin/dd", "if=x"}, execpolicy.NoStdin); d.Allowed || d.Rule != "deny dd" {
		t.Errorf("%+v", d)
	}
}

func TestAnAllowListCoversEveryCommandRun(t *testing.T) {
	p := execpolicy.Policy{Allow: []string{"ls", "cat", "/usr/bin/top", "kubectl get *"}}
	for argv, ok := range map[string]bool{
		"ls -l":                true,
		"/bin/ls":              true,
		"/usr/bin/top":         true,
		"/bin/top":             false,
		"kubectl get pods":     true,
		"kubectl delete pods":  false,
		"rm x":                 false,
		"sh":                   false,
		"nice ls":              false, // nice itself is not allowed
		"sh\x00-c\x00ls | cat": false, // sh itself is not on the list
	} {
		args := strings.Fields(argv)
		if strings.Contains(argv, "\x00") {
			args = strings.Split(argv, "\x00")
		}
		if d := p.Check(args, execpolicy.NoStdin); d.Allowed != ok {
			t.Errorf("%q: %v, want allowed=%v", argv, d, ok)
		}
	}
	withShell := execpolicy.Policy{Allow: []string{"sh", "ls", "cat"}}
	if d := withShell.Check([]string{"sh", "-c", "ls | cat"}, execpolicy.NoStdin); !d.Allowed {
		t.Errorf("sh -c 'ls | cat' with sh, ls and cat allowed: %v", d)
	}
	if d := withShell.Check([]string{"sh", "-c", "ls; rm x"}, execpolicy.NoStdin); d.Allowed {
		t.Errorf("sh -c 'ls; rm x' passed an allow list without rm")
	}
}

func TestNoRulesAllowEverything(t *testing.T) {
	if d := (execpolicy.Policy{}).Check([]string{"sh", "-c", "$(anything)"}, execpolicy.NoStdin); !d.Allowed {
		t.Errorf("an empty policy refused: %v", d)
	}
}

// Hostile argv never panics the resolver, and a resolved deny always holds.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"sh\x00-c\x00rm x", "env\x00-u", "timeout\x00-s", "sh\x00-c\x00'", "xargs\x00-I", "busybox", "xargs\x00rm", "sh\x00-c\x00echo x | rm"} {
		for in := range 3 {
			f.Add(s, uint8(in))
		}
	}
	p := execpolicy.Policy{Deny: []string{"rm"}}
	f.Fuzz(func(t *testing.T, s string, in uint8) {
		argv := strings.Split(s, "\x00")
		d := p.Check(argv, execpolicy.Stdin(in%3))
		if d.Allowed && len(argv) > 0 && (argv[0] == "rm" || strings.HasSuffix(argv[0], "/rm")) {
			t.Errorf("%q allowed", argv)
		}
	})
}

// GNU sed runs commands from its script (the e command, s///e): every
// script on the command line is read, wherever sed finds it, and what could
// be a script is treated as one.
func TestSedThatRunsCommandsIsUndecidable(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	for _, argv := range [][]string{
		{"sed", "-n", "1e rm -rf /x", "/etc/hostname"},
		{"sed", "s/.*/rm -rf \\/x/e", "/etc/hostname"},
		{"/bin/sed", "-e", "p", "-e", "1e rm -rf /x", "f"},
		{"sed", "-ne", "1e rm -rf /x", "f"},
		{"sed", "-ne1e rm -rf /x", "f"},
		{"sed", "--expression=1e rm -rf /x", "f"},
		{"sed", "--expr", "1e rm -rf /x", "f"},
		{"sed", "-E", "-s", "-u", "-z", "-l", "5", "1e rm", "f"},
		{"sed", "-l5", "--line-length", "5", "1e rm", "f"},
		{"sed", "-ie", "1e rm", "f"},           // -i with backup suffix "e": the script is the operand
		{"sed", "--", "1e rm", "f"},            // the first operand after --
		{"sed", "-n", "p", "-e", "1e rm", "f"}, // -e after an operand is still an option
		{"sed", "1e rm", "-e", "p", "f"},       // with POSIXLY_CORRECT, the operand is the script
		{"sed", "-e", "1e rm", "--sandbox", "f"},
		{"sed", "s/[/]/w/;e rm -rf /x", "f"}, // a '/' in a bracket expression does not end the regex
		{"sed", "-n", "a\\", "-e", "p", "-f", "/tmp/s"},
		{"sed", "-V", "x", "p"},
		{"sed", "--s", "p"}, // ambiguous: --silent, --separate or --sandbox
		{"sed", "--posix=1", "p"},
		{"sed", "-e"},
		{"sed", "s/ä/a/", "f"},
		{"busybox", "sed", "1e rm", "f"},
		{"gsed", "1e rm", "f"},
		{"sh", "-c", "sed -n '1e rm -rf /x' /etc/hostname"},
		{"sh", "-c", "ls | xargs sed -n p"},
		{"sh", "-c", "ls | xargs sed -e p"},
		{"sh", "-c", "ls | xargs sed --"},
		{"sh", "-c", "ls | xargs sed -l -- -e p"},   // -- is -l's value: options go on
		{"sed", "s/.*\\c[*/rm -rf \\/x/e#]//", "f"}, // sed 4.10 reads \c[ as one character
		// What the shell expands is not what sed gets.
		{"sh", "-c", `p="1e rm -rf /x"; sed "$p" /etc/hostname`},
		{"bash", "-c", `sed $'#\ne rm -rf /x' f`},
		{"bash", "-c", `sed -e p {-n,'-e1e rm -rf /x'} f`},
		{"sh", "-c", "sed -n p *"},
		{"sh", "-c", `sed -n "s/x/$V/p" f`},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
	for _, argv := range [][]string{
		{"sed", "-n", "1p", "/etc/hostname"},
		{"sed", "-i.bak", "s/a/b/g", "f"},
		{"sed", "-E", "s/[0-9]+/N/g;/^$/d", "f"},
		{"sed", ":a;N;$!ba;s/\\n/ /g", "f"},
		{"sed", "-e", "s/e/E/g", "errors.log"},
		{"sed", "/error/d", "f"},
		{"sed", "$a end; e is text", "f"},
		{"sed", "y/abc/xyz/", "f"},
		{"sed", "s/[/]/x/", "f"},
		{"sed", "-n", "--", "p", "f"},
		{"sed", "--sandbox", "-e", "1e rm", "f"}, // sed refuses to start: nothing runs
		{"sed", "--sandbox", "-f", "/tmp/s", "f"},
		{"sed", "--sandbox", "1e rm", "f"},
		{"sed", "--version"},
		{"sh", "-c", "grep -l x . | xargs sed -i 's/a/b/' --"},
		{"sh", "-c", "ls | xargs sed -n -e p --"},
		{"sh", "-c", "sed -n p -- *.log"},
		{"sh", "-c", `sed -i 's/a/b/' -- "$F"`},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("%q: %v, want allowed", argv, d)
		}
	}
	// The refusal says what sed would do.
	d := p.Check([]string{"sed", "s/.*/rm -rf \\/x/e", "f"}, execpolicy.NoStdin)
	if !strings.Contains(d.Rule, "sed's s///e runs what it substituted as a command") {
		t.Errorf("refusal: %q", d.Rule)
	}
	d = p.Check([]string{"sh", "-c", "ls | xargs sed -n p"}, execpolicy.NoStdin)
	if !strings.Contains(d.Rule, "give sed its script, then --") {
		t.Errorf("refusal: %q", d.Rule)
	}
}

// A word the shell expands ($v, a glob, {a,b}) is not what the command
// gets, nor necessarily one argument: it cannot be the command's name, nor
// an argument of a program whose arguments say what it runs.
func TestWhatTheShellExpandsIsUndecidableWhereItCouldRunCode(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	for _, script := range []string{
		"{rm,-rf,/x}",
		"r{m,} -rf /x",
		"$CMD -rf /x",
		"python3 $S",
		`python3 "$S"`,
		"nice -n $N ls",
		"env $V ls",
		"xargs -n $N echo",
		"dash -c $S",
		"bash -c \"$C\"",
		"export $V; bash -c true",
		"awk $P f",
		"find . $X",
	} {
		if d := p.Check([]string{"sh", "-c", script}, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("sh -c %q: %v, want refused as undecidable", script, d)
		}
	}
	for _, script := range []string{
		"ls $HOME",
		`echo "$HOME" '$x'`,
		"FOO=$HOME ls",
		"cat /var/log/*.log | grep x",
		"[ -f x ] && cat x",
		"[[ -f x ]] && cat x",
		"{ ls; }",
		"grep -c x /tmp/[ab]*",
		"echo \\$HOME",
	} {
		if d := p.Check([]string{"sh", "-c", script}, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("sh -c %q: %v, want allowed", script, d)
		}
	}
	// What bash evaluates, or splits, past what a tokenizer follows: a line
	// continuation, quotes nested in ${...}, a tilde, arithmetic (an array
	// subscript in it runs $(...) held in a variable), ${x@P}, a variable
	// that makes programs run code set by read, an extglob pattern.
	for _, c := range [][]string{
		{"sh", "-c", "echo \"$\\\n(rm -rf /x)\""},
		{"sh", "-c", "\"r\\\nm\" -rf /x"},
		{"sh", "-c", "IFS=,; x='1e rm -rf /x'; sed -n $\\\nx f"},
		{"sh", "-c", `echo "${x:-"'"}"; rm -rf /x #'`},
		{"sh", "-c", "~ -rf /x"},
		{"sh", "-c", "~root/bin/x"},
		{"bash", "-c", "OLDPWD=/usr/bin/rm; ~- -rf /x"},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; ((x))"},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; [[ x -eq 0 ]]"},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; echo $[x]"},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; let x"},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; declare -i y; y=$x"},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; unset \"$x\""},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; echo ${!x}"},
		{"bash", "-c", "x='a[$(rm -rf /x)]'; echo ${s:x}"},
		{"bash", "-c", "x='$(rm -rf /x)'; echo ${a[$x]}"},
		{"bash", "-c", "[ -v 'a[$(rm -rf /x)]' ]"},
		{"bash", "-c", "printf -v 'a[$(rm -rf /x)]' %s 1"},
		{"bash", "-c", "x='$(rm -rf /x)'; echo ${x@P}"},
		{"bash", "-c", "read -r PS4 <<< '$(rm -rf /x)'; set -x; :"},
		{"bash", "-c", "set -a; read BASH_ENV <<< /tmp/x; bash -c :"},
		{"sh", "-c", "command export BASH_ENV=/tmp/x; bash -c :"},
		{"bash", "-O", "extglob", "-c", "cd /usr/bin; @(r)m -rf /x"},
		{"zsh", "-c", "=rm -rf /x"},
		{"zsh", "-c", "ls *(e:'rm -rf /x':)"},
		{"sh\x00", "-c", "rm -rf /x"},
	} {
		if d := p.Check(c, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", c, d)
		}
	}
	for _, script := range []string{
		`timeout 10 curl -s "$URL"`,
		`nice -n 5 ls "$HOME"`,
		`echo "${HOME:-/root}" ${#HOME} ${1} $@`,
		"[[ -f x ]] && test -f y && [ \"$a\" = b ]",
		"read -r line < /etc/hostname; echo \"$line\"",
		"printf '%s\\n' x; export FOO=bar",
	} {
		if d := p.Check([]string{"bash", "-c", script}, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("bash -c %q: %v, want allowed", script, d)
		}
	}
	// Against a pattern with a space, what the shell expands cannot be
	// judged: a glob may turn into a file named --checkpoint-action=exec=...
	tar := execpolicy.Policy{Allow: []string{"sh", "tar -czf /b.tgz /data/*"}}
	if d := tar.Check([]string{"sh", "-c", "tar -czf /b.tgz /data/*"}, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
		t.Errorf("a glob against a whole-line pattern: %v, want refused as undecidable", d)
	}
	// A denied command is matched and shown as written, without the mark.
	d := p.Check([]string{"sh", "-c", "rm -rf $X"}, execpolicy.NoStdin)
	if d.Allowed || d.Rule != "deny rm" || strings.Join(d.Command, " ") != "rm -rf $X" {
		t.Errorf("sh -c 'rm -rf $X': %+v", d)
	}
}

// From a third hostile review: keywords a wrapper leaves before a command,
// builtins that run or rename commands (jobs -x, history, the hash and
// alias tables), a quoted word that only looks like an assignment, dash's
// reading of &>, an assignment in ${X:=...}, wait -p, exec -a before a
// multi-call binary, git configuration from the environment, commands
// handed to a program with a shell escape, and programs that run their
// arguments.
func TestMoreWaysToRunACommandAreSeenOrUndecidable(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	for _, argv := range [][]string{
		{"bash", "-c", "time ! rm -rf /x"},
		{"bash", "-c", "time { rm -rf /x; }"},
		{"sh", "-c", `cd /tmp && mkdir -p a= && "a"=/../../bin/rm -rf /x`},
		{"toybox", "rm", "-rf", "/x"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed {
			t.Errorf("%q was allowed", argv)
		}
	}
	for _, argv := range [][]string{
		{"bash", "-c", "jobs -x rm -rf /x"},
		{"bash", "-c", "BASH_CMDS=/bin/rm; 0 -rf /x"},
		{"bash", "-c", "shopt -s expand_aliases\nBASH_ALIASES=rm\n0 -rf /x"},
		{"bash", "-c", "set -o history -H\nhistory -s 'rm -rf /x'\n!!"},
		{"bash", "-c", "set -H; echo rm -rf /x; !!:1*"},
		{"sh", "-c", "true &>/dev/null rm -rf /x"},
		{"bash", "-c", "set -a; : ${BASH_ENV:=/dev/stdin}; bash -c :"},
		{"bash", "-c", "x='b[$(rm -rf /x)]'; sleep 0 & wait -n -p 'a[$x]'"},
		{"bash", "-c", "exec -a rm busybox -rf /x"},
		{"env", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=alias.x", "GIT_CONFIG_VALUE_0=!rm -rf /x", "git", "x"},
		{"psql", "-c", `\! rm -rf /x`},
		{"psql", "--command=\\o |rm -rf /x"},
		{"mysql", "-e", "system rm -rf /x"},
		{"sqlite3", ":memory:", ".shell rm -rf /x"},
		{"sqlite3", "-cmd", ".system rm -rf /x", "db"},
		{"vim", "-c", "!rm -rf /x", "-c", "q"},
		{"vi", "+!rm -rf /x"},
		{"gdb", "-batch", "-ex", "shell rm -rf /x"},
		{"gdb", "--eval-command=shell rm -rf /x"},
		{"dc", "-e", "!rm -rf /x"},
		{"sftp", "-S", "/bin/rm", "host"},
		{"setarch", "x86_64", "rm", "-rf", "/x"},
		{"sg", "root", "rm -rf /x"},
		{"tini", "--", "rm", "-rf", "/x"},
		{"gawk", `BEGIN { f = "sys" "tem"; @f("rm -rf /x") }`},
		{"sh", "-c", "echo $((1+2))"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
	for _, argv := range [][]string{
		{"psql", "-h", "db", "-U", "app", "-c", "select count(*) from jobs"},
		{"mysql", "-e", "show processlist"},
		{"sqlite3", "app.db", "select 1"},
		{"vim", "/etc/hosts"},
		{"gdb", "-p", "1", "-batch"},
		{"bash", "-c", `FOO="a b" ls; "for" x`},
		{"bash", "-c", "time ls"},
		{"bash", "-c", "set -eu; ls"},
		{"bash", "-c", "ps aux | grep x > /dev/null 2>&1"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("%q: %v, want allowed", argv, d)
		}
	}
	if d := p.Check([]string{"sh", "-c", "echo $((1+2))"}, execpolicy.NoStdin); !strings.Contains(d.Rule, "arithmetic") {
		t.Errorf("$((...)): %q, want it named arithmetic", d.Rule)
	}
}

// From a fourth hostile review: what starts a shell or reads code from a
// pipe when given no command or an option (su, unshare, python -i, perl
// -d, pickle, mawk -W exec, gawk -i, vim under its other names), xargs on
// a pipe feeding a program whose options run commands, and commands handed
// to a program in its arguments however the option is spelled.
func TestCommandsAProgramRunsByItsOwnLogicAreUndecidable(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	fed := [][]string{
		{"su"}, {"unshare"}, {"script"}, {"newgrp"}, {"m4"},
		{"python3", "-i", "/dev/null"}, {"perl", "-d", "/dev/null"}, {"ghci", "x.hs"},
		{"vim.basic", "-es"}, {"view"},
		{"xargs", "git"}, {"xargs", "tar"}, {"xargs", "sort"}, {"xargs", "-n1", "wget"},
	}
	for _, argv := range fed {
		if d := p.Check(argv, execpolicy.Pipe); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q on a pipe: %v, want refused as undecidable", argv, d)
		}
	}
	for _, argv := range [][]string{
		{"python3", "-m", "pickle", "-"},
		{"mawk", "-W", "exec", "/dev/stdin"},
		{"gawk", "-i", "/dev/stdin", "BEGIN{}"},
		{"bash", "-c", "su <<< 'rm -rf /x'"},
		{"sh", "-c", "echo 'rm -rf /x' | unshare"},
		{"psql", "-Xc", `\! rm -rf /x`},
		{"psql", "--com", `\! rm -rf /x`},
		{"psql", `--comm=\! rm -rf /x`},
		{"psql", "-c", "COPY (SELECT 1) TO PROGRAM 'rm -rf /x'"},
		{"psql", "-c", `\o |rm -rf /x`},
		{"sqlite3", "--cmd", ".shell rm -rf /x", ":memory:"},
		{"gdb", "-batch", "-eval=shell rm -rf /x"},
		{"gdb", "--eval-c=shell rm -rf /x"},
		{"vim.basic", "-es", "-c", "!rm -rf /x", "-c", "q"},
		{"scp", "-o", "ProxyCommand=rm -rf /x", "h:a", "b"},
		{"sftp", "-oProxyCommand=rm -rf /x", "h"},
		{"sftp", "-S", "/bin/rm", "h"},
		{"git", "-c", "alias.x=!rm -rf /x", "x"},
		{"git", "-c", "core.fsmonitor=rm -rf /x", "status"},
		{"git", "ls-remote", "--upload-pack=rm -rf /x #", "."},
		{"mysql", "-Be", "system rm -rf /x"},
		{"mysql", "--exec=system rm -rf /x"},
		{"dc", "--e=!rm -rf /x"},
		{"rsync", "-avze", "rm -rf /x", "a", "h:b"},
		{"rsync", "--rsh=rm -rf /x", "a", "h:b"},
		{"tar", "-cf", "/dev/null", "--to-command=rm -rf /x", "f"},
		{"tar", "--use-compress-prog=rm", "-xf", "a.tar"},
		{"tar", "xIf", "rm", "a.tar"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
	for _, argv := range [][]string{
		{"psql", "-h", "db", "-c", `\dt`},
		{"psql", "-c", `select '\x'`},
		{"awk", "-F|", "{print $1}", "f"},
		{"awk", "-v", "x=|", "{print x}", "f"},
		{"sftp", "-oStrictHostKeyChecking=no", "h"},
		{"scp", "-P", "2222", "a", "h:b"},
		{"rsync", "-avz", "a", "h:b"},
		{"git", "-C", "/repo", "log", "-1"},
		{"tar", "-czf", "/tmp/b.tgz", "/data"},
		{"gdb", "-p", "1", "-batch"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("%q: %v, want allowed", argv, d)
		}
	}
	for _, argv := range [][]string{{"xargs", "-0", "ls", "-l"}, {"xargs", "kill"}, {"xargs", "grep", "-l", "x"}} {
		if d := p.Check(argv, execpolicy.Pipe); !d.Allowed {
			t.Errorf("%q on a pipe: %v, want allowed", argv, d)
		}
	}
}

// From a fifth hostile review: a program named by a path that is not its
// own (/proc/self/exe, /dev/fd/N), startup files found through HOME, and
// programs whose options or subcommands run commands, which an allow list
// would otherwise let through with the program.
func TestProgramsThatRunOthersThroughOptionsOrPathsAreUndecidable(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	for _, argv := range [][]string{
		{"env", "/proc/self/exe", "rm", "-rf", "/x"},
		{"timeout", "10", "/proc/self/exe", "10", "rm", "-rf", "/x"},
		{"sh", "-c", `/proc/self/exe -c "rm -rf /x"`},
		{"sh", "-c", "exec 3</usr/bin/rm; /dev/fd/3 -rf /x"},
		{"sh", "-c", "cd /proc/self && ./exe -c 'rm -rf /x'"},
		{"run-parts", "--regex", "^rm$", "--arg=-rf", "--arg=/x", "/usr/bin"},
		{"coreutils", "--coreutils-prog=rm", "-rf", "/x"},
		{"sh", "-c", "cat > /tmp/.profile; HOME=/tmp sh -lc ls"},
		{"env", "BROWSER=rm -rf /x %s", "python3", "-W", "ignore::antigravity.X", "/dev/null"},
		{"sort", "-S", "64k", "--compress-prog=sh"},
		{"git", "clone", "-u", "rm -rf /x; git-upload-pack", "file:///r", "d"},
		{"git", "rebase", "-x", "rm -rf /x", "main"},
		{"git", "bisect", "run", "rm", "-rf", "/x"},
		{"git", "submodule", "foreach", "rm -rf /x"},
		{"make", "-f", "/dev/null", "--eval", "x:=$(shell rm -rf /x)"},
		{"man", "-P", "rm -rf /x", "ls"},
		{"zip", "-T", "-TT", "rm -rf /x #", "z.zip", "f"},
		{"rg", "--pre", "rm", "x"},
		{"tmux", "new", "rm -rf /x"},
		{"ip", "netns", "exec", "n", "rm", "-rf", "/x"},
		{"apt-get", "-o", "APT::Update::Pre-Invoke::=rm -rf /x", "update"},
		{"dpkg", "--pre-invoke=rm -rf /x", "-i", "x.deb"},
		{"npx", "-c", "rm -rf /x"},
		{"git", "-C", ".", "rebase", "-x", "rm -rf /x", "main"},
		{"git", "-C", ".", "submodule", "foreach", "rm -rf /x"},
		{"apt-get", "-qo", "APT::Update::Pre-Invoke::=rm -rf /x", "update"},
		{"scp", "-Bo", "ProxyCommand=rm -rf /x", "h:a", "b"},
		// A word the shell expands among the options of a program whose
		// options run commands.
		{"sh", "-c", `X="-c alias.x=!rm -rf /x"; git $X x`},
		{"sh", "-c", "tar -xf a.tar $X"},
		// From a sixth review: an option's value that looks like -- or
		// like an option, clusters, and options only some spellings carry.
		{"tar", "-xf", "a", "--exclude", "--", "--to-command=rm -rf /x"},
		{"sort", "-o", "--", "--compress-program=rm"},
		{"psql", "-Fc", "-c", `\! rm -rf /x`},
		{"mysql", "-ume", "-e", "system rm -rf /x"},
		{"dc", "-fe", "-e", "!rm -rf /x"},
		{"make", "-f", "/dev/null", "X!=rm -rf /x"},
		{"make", "X=$(shell rm -rf /x)"},
		{"git", "clone", "-c", "core.sshCommand=rm -rf /x", "ssh://h/r", "d"},
		{"git", "--attr-source", "HEAD", "rebase", "-x", "rm -rf /x", "HEAD~1"},
		{"git", "--frobnicate", "x", "rebase", "-x", "rm -rf /x"},
		{"vim", "-Nesc", "!rm -rf /x"},
		{"ex", "-sc", "!rm -rf /x"},
		{"sqlite3", ":memory:", "select edit('x','rm -rf /x;')"},
		{"zip", "-T", "-TTrm -rf /x", "z.zip", "f"},
		{"man", "-Hrm", "ls"},
		{"env", "TAR_OPTIONS=--checkpoint=1 --checkpoint-action=exec=rm", "tar", "-cf", "/dev/null", "f"},
		{"env", "GIT_SEQUENCE_EDITOR=rm -rf /x", "git", "rebase", "-i", "HEAD~1"},
		{"env", "PYTHONWARNINGS=ignore::antigravity.X", "python3", "app.py"},
		{"/lib64/ld-linux-x86-64.so.2", "/bin/rm", "-rf", "/x"},
		{"ld-musl-x86_64.so.1", "/bin/rm"},
		{"valgrind", "rm", "-rf", "/x"},
		{"emacs", "-batch", "--eval", "(shell-command \"rm -rf /x\")"},
		{"less", "+!rm -rf /x", "f"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
	if d := p.Check([]string{"busybox.static", "rm", "-rf", "/x"}, execpolicy.NoStdin); d.Allowed || d.Rule != "deny rm" {
		t.Errorf("busybox under another name: %v, want refused by deny rm", d)
	}
	for _, argv := range [][]string{
		{"git", "push", "-u", "origin", "main"},
		{"git", "log", "--oneline", "-5"},
		{"sort", "-n", "f"},
		{"make", "-C", "dir", "all"},
		{"ip", "addr", "show"},
		{"apt-get", "install", "-y", "curl"},
		{"sh", "-c", "HOSTNAME=x ls"},
		{"git", "-C", "/repo", "log", "-1"},
		{"exec", "ls", "-la"},
		{"sh", "-c", "exec java -jar app.jar"},
		{"make", "DEBUG=1", "all"},
		{"git", "--no-pager", "log", "-1"},
		{"vim", "-R", "/etc/hosts"},
		{"less", "+G", "/var/log/app.log"},
		{"sqlite3", "app.db", "select name from users"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("%q: %v, want allowed", argv, d)
		}
	}
	// A * in a whole-line allow pattern does not climb out of its directory.
	logs := execpolicy.Policy{Allow: []string{"cat /var/log/*"}}
	if d := logs.Check([]string{"cat", "/var/log/../../etc/shadow"}, execpolicy.NoStdin); d.Allowed {
		t.Errorf("cat /var/log/../../etc/shadow was allowed by cat /var/log/*")
	}
	if d := logs.Check([]string{"cat", "/var/log/app.log"}, execpolicy.NoStdin); !d.Allowed {
		t.Errorf("cat /var/log/app.log: %v", d)
	}
}

// From a seventh review: bash's NAME+=value is an assignment; variables set
// by {NAME}> redirections, getopts, set -a and xargs --process-slot-var;
// a standard input opened by a redirection of fd 0 or a /dev/tcp path;
// more programs that run their arguments.
func TestVariablesSetOtherwiseAndInputOpenedOtherwiseAreUndecidable(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	if d := p.Check([]string{"bash", "-c", "A+=1 rm -rf /x"}, execpolicy.NoStdin); d.Allowed || d.Rule != "deny rm" {
		t.Errorf("A+=1 rm: %v, want refused by deny rm", d)
	}
	for _, argv := range [][]string{
		{"bash", "-c", "export PS4+='$(rm -rf /x)'; set -x; :"},
		{"bash", "-c", "x='b[$(rm -rf /x)]'; : {a[$x]}>/dev/null"},
		{"bash", "-c", ": {BASH_ENV}>/dev/null; bash -c :"},
		{"bash", "-c", "set -a; X=1; bash -c :"},
		{"bash", "-c", "set -o allexport; X=1"},
		{"bash", "-c", "getopts x BASH_ENV -x; bash -c :"},
		{"xargs", "--process-slot-var=BASH_ENV", "echo"},
		{"bash", "-c", "sh 0>/dev/tcp/127.0.0.1/4444"},
		{"bash", "-c", "exec 3</tmp/cmds; sh 0>&3"},
		{"bash", "-c", "cat /etc/hostname > /dev/tcp/127.0.0.1/4444"},
		{"choom", "-n", "0", "rm", "-rf", "/x"},
		{"ssh-agent", "rm", "-rf", "/x"},
		{"fakeroot", "rm", "-rf", "/x"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
	for _, script := range []string{"set -eu; ls", "PATH+=:/opt/bin ls", "ls 2>/dev/null", "getopts ab opt"} {
		if d := p.Check([]string{"bash", "-c", script}, execpolicy.NoStdin); !d.Allowed {
			t.Errorf("bash -c %q: %v, want allowed", script, d)
		}
	}
}

// A whole-line pattern is matched word by word: a * standing alone is any
// number of words, a * inside a word stays in that word.
func TestWholeLinePatternsMatchWordByWord(t *testing.T) {
	for _, c := range []struct {
		pattern string
		argv    []string
		match   bool
	}{
		{"cat /var/log/*", []string{"cat", "/var/log/app.log"}, true},
		{"cat /var/log/*", []string{"cat", "/var/log/x", "/etc/shadow"}, false},
		{"cat /var/log/*", []string{"cat", "/var/log/a b"}, true},
		{"kubectl get *", []string{"kubectl", "get"}, true},
		{"kubectl get *", []string{"kubectl", "get", "pods", "-n", "x"}, true},
		{"kubectl get *", []string{"kubectl", "delete", "pods"}, false},
		{"rm -rf *", []string{"rm", "-rf"}, true},
		{"rm -rf *", []string{"rm", "-r", "-f", "/"}, false},
		{"* --force", []string{"kubectl", "delete", "--force"}, true},
		{"ls -l ?", []string{"ls", "-l", "x"}, true},
	} {
		p := execpolicy.Policy{Allow: []string{c.pattern}}
		if d := p.Check(c.argv, execpolicy.NoStdin); d.Allowed != c.match {
			t.Errorf("%q against %q: allowed %v, want %v", c.pattern, c.argv, d.Allowed, c.match)
		}
	}
	// However many stars, matching takes the product of the lengths.
	stars := strings.Repeat("* ", 120) + "x"
	long := make([]string, 5000)
	for i := range long {
		long[i] = "a"
	}
	if d := (execpolicy.Policy{Allow: []string{stars}}).Check(long, execpolicy.NoStdin); d.Allowed {
		t.Errorf("%d words matched a pattern ending in x", len(long))
	}
}

// From an eighth review: bash's $'...' (where \' is a quote), a quoted
// digit before a redirection (a word, not a descriptor), bash's time keyword
// before assignments and compound commands, set -k and bash -k, and && or
// || inside [[ ... ]].
func TestBashQuotingKeywordsAndOptionsAreReadAsBashReadsThem(t *testing.T) {
	p := execpolicy.Policy{Deny: []string{"rm"}}
	for _, argv := range [][]string{
		{"bash", "-c", `true $'\' ' ; rm -rf /x #'`},
		{"bash", "-c", `echo "$'" ; rm -rf /x ; echo "'"`},
		{"sh", "-c", "timeout '5'>&2 rm -rf /x"},
		{"sh", "-c", `nice -n \5>&2 rm -rf /x`},
		{"bash", "-c", "time x=/bin/ls rm -rf /x"},
		{"bash", "-c", "time -p rm -rf /x"},
		// [[ is a keyword in bash only as a command's first word, and not
		// at all in dash; $'...' is bash's, not dash's. sh may be either.
		{"sh", "-c", "[[ x || rm -rf /data ]]"},
		{"bash", "-c", "A=1 [[ x || rm -rf /data ]]"},
		{"bash", "-c", ">/dev/null [[ x || rm -rf /data ]]"},
		{"sh", "-c", `printf %s $'\' ; rm -rf /data ; #'`},
		{"dash", "-c", `printf %s $'\' ; rm -rf /data ; #'`},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed {
			t.Errorf("%q was allowed", argv)
		}
	}
	for _, argv := range [][]string{
		{"bash", "-c", "time for PS4 in '$(rm -rf /x)'; do set -x; :; done"},
		{"bash", "-k", "-c", "tar -cf /dev/null f TAR_OPTIONS=--checkpoint-action=exec=rm"},
		{"bash", "-o", "keyword", "-c", "ls"},
		{"bash", "-c", "set -k; ls"},
		{"bash", "-c", "ls='a[$(rm -rf /x)]'; [[ -n x && ls -eq 0 ]]"},
		{"bash", "-c", "[[ -n x || -v 'a[$(rm -rf /x)]' ]]"},
		{"bash", "-c", "[[ -n x"},
		{"sh", "-c", "ls='a[$(rm -rf /x)]'; [[ -n x && ls -eq 0 ]]"},
	} {
		if d := p.Check(argv, execpolicy.NoStdin); d.Allowed || !strings.HasPrefix(d.Rule, "undecidable") {
			t.Errorf("%q: %v, want refused as undecidable", argv, d)
		}
	}
	for _, script := range []string{"[[ -f x && -r x ]] && cat x", "[[ a < b ]] && ls", "time ls -l", `printf '%s' $'a\tb'`} {
		for _, shell := range []string{"bash", "sh"} {
			if d := p.Check([]string{shell, "-c", script}, execpolicy.NoStdin); !d.Allowed {
				t.Errorf("%s -c %q: %v, want allowed", shell, script, d)
			}
		}
	}
}
