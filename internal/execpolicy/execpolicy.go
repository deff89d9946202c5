// Package execpolicy decides whether an exec's command may run, from allow
// and deny patterns, before the stream opens: something RBAC cannot express.
//
// A pattern is matched against every command the exec would run, after
// resolving what can be resolved: the path of argv[0] is cleaned
// (/bin/../bin/rm, //bin//rm and ./rm are rm), wrappers are looked through
// (env, nice, timeout, nohup, xargs, busybox, toybox, stdbuf, ionice,
// setsid, taskset, time, command, exec), a shell's -c string is split into
// its simple commands (shell.go; words the shell expands are marked), and a
// sed script is read as GNU sed reads it (sed.go). What cannot be decided
// is refused whenever the policy has rules, unless it allows the
// undecidable: a substitution, a command name that is not literal, eval,
// sudo, a wrapper option it does not know, what bash evaluates as code
// (arithmetic, history), sed's e command, a program that runs commands its
// options or arguments name (commandsInArguments), an expanded word where
// it could be code or against a whole-line pattern, and a program that
// runs what its input gives it (a shell, an interpreter, a database client,
// xargs feeding anything but a few plain programs) where that input may be
// a pipe.
//
// Patterns: "rm" matches argv[0]'s base name; "/usr/bin/rm" (with a slash)
// the cleaned full path; a pattern with a space ("kubectl get *", "rm -rf *")
// the whole argv word by word, a * standing alone being any number of words
// and a * or ? inside a word a glob within it. Nothing here can see a binary copied under
// another name, or keystrokes in an interactive shell: the docs say so, and a
// policy can forbid interactive exec altogether.
package execpolicy

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Policy is a set of rules; the zero Policy allows everything.
type Policy struct {
	Allow []string
	Deny  []string
	// AllowUndecidable lets through commands the resolver cannot see into.
	AllowUndecidable bool
}

// Decision says why a command may not run.
type Decision struct {
	Allowed bool
	// Rule is the pattern that decided ("deny rm"), or what was undecidable.
	Rule string
	// Command is the resolved command the rule applied to.
	Command []string
}

func (d Decision) String() string {
	if d.Allowed {
		return "allowed"
	}
	return fmt.Sprintf("refused by %s (command: %s)", d.Rule, strings.Join(d.Command, " "))
}

// Stdin is what an exec's command reads on its standard input.
type Stdin int

const (
	// NoStdin: the caller sends nothing.
	NoStdin Stdin = iota
	// Pipe: the caller sends bytes, which a shell or an interpreter would
	// run as its program (echo 'rm -rf /x' | kubectl exec -i pod -- sh).
	Pipe
	// Terminal: the caller types on a TTY, an interactive session that
	// rules cannot see into (forbidInteractive refuses it).
	Terminal
)

// StdinOf is what an exec with those streams gives its command.
func StdinOf(stdin, tty bool) Stdin {
	switch {
	case !stdin:
		return NoStdin
	case tty:
		return Terminal
	}
	return Pipe
}

// Check decides argv, run with in as its standard input.
func (p Policy) Check(argv []string, in Stdin) Decision {
	if len(p.Allow) == 0 && len(p.Deny) == 0 {
		return Decision{Allowed: true}
	}
	cmds, undecidable := Resolve(argv, in)
	if undecidable != "" && !p.AllowUndecidable {
		return Decision{Rule: "undecidable: " + undecidable, Command: argv}
	}
	for _, c := range cmds {
		if anyExpands(c) && p.linePatterns() && !p.AllowUndecidable {
			return Decision{Rule: "undecidable: a word the shell expands, which a pattern with a space cannot judge", Command: plain(c)}
		}
		c = plain(c)
		for _, pat := range p.Deny {
			if matches(pat, c) {
				return Decision{Rule: "deny " + pat, Command: c}
			}
		}
		if len(p.Allow) == 0 {
			continue
		}
		allowed := false
		for _, pat := range p.Allow {
			// A whole-line pattern matches text, not paths: allow
			// "cat /var/log/*" must not allow cat /var/log/../../etc/shadow,
			// so no argument of what it allows may climb with "..".
			if matches(pat, c) && !(strings.Contains(pat, " ") && climbs(c[1:])) {
				allowed = true
				break
			}
		}
		if !allowed {
			return Decision{Rule: "allow list (no pattern matches)", Command: c}
		}
	}
	return Decision{Allowed: true}
}

// linePatterns reports whether a pattern matches whole command lines.
func (p Policy) linePatterns() bool {
	line := func(pat string) bool { return strings.Contains(pat, " ") }
	return slices.ContainsFunc(p.Allow, line) || slices.ContainsFunc(p.Deny, line)
}

func matches(pattern string, argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	switch {
	case strings.Contains(pattern, " "):
		return wordsMatch(strings.Split(pattern, " "), argv)
	case strings.Contains(pattern, "/"):
		return glob(pattern, argv[0])
	default:
		return glob(pattern, path.Base(argv[0]))
	}
}

// wordsMatch matches argv word by word against a whole-line pattern's
// words: a * standing alone is any number of words (rm -rf * is rm -rf and
// anything after it); a word with a * or ? in it is a glob within one word
// (cat /var/log/* is cat and one file under /var/log). It takes time in
// proportion to the two lengths' product, however many stars.
func wordsMatch(pattern, argv []string) bool {
	// next[j]: pattern[i+1:] matches argv[j:]; cur[j]: pattern[i:] does.
	next := make([]bool, len(argv)+1)
	cur := make([]bool, len(argv)+1)
	next[len(argv)] = true
	for i := len(pattern) - 1; i >= 0; i-- {
		for j := len(argv); j >= 0; j-- {
			if pattern[i] == "*" {
				cur[j] = next[j] || j < len(argv) && cur[j+1]
			} else {
				cur[j] = j < len(argv) && next[j+1] && glob(pattern[i], argv[j])
			}
		}
		next, cur = cur, next
	}
	return next[0]
}

// climbs reports whether an argument holds a ".." path element.
func climbs(args []string) bool {
	for _, a := range args {
		if slices.Contains(strings.Split(a, "/"), "..") {
			return true
		}
	}
	return false
}

// glob matches s against a pattern where * is any run and ? any one byte.
func glob(pattern, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && (pattern[px] == '?' || pattern[px] == s[sx]):
			px++
			sx++
		case px < len(pattern) && pattern[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// Resolve returns every command argv would run with in as its standard
// input, argv[0] cleaned, or why it cannot tell.
func Resolve(argv []string, in Stdin) (cmds [][]string, undecidable string) {
	for _, a := range argv {
		if strings.Contains(a, expands) {
			// No process can be given a NUL; and it is the mark of what a
			// shell expands, which a caller must not forge.
			return nil, "a NUL byte in the command"
		}
	}
	return resolve(argv, 0, in == Pipe)
}

const maxDepth = 8

// runsWhatItIsGiven: a program whose arguments can name, or hold, what it
// runs (find's -exec, awk's system(), sed's e, git -c, tar --to-command
// among them), so that a word the shell expands among them is undecidable.
func runsWhatItIsGiven(name string) bool {
	_, wrapped := wrappers[name]
	_, runs := runsArguments[name]
	return wrapped || runs || shells[name] || isInterpreter(name) || isReader(name) || optionsRunCommands[name] ||
		name == "find" || name == "awk" || name == "gawk" || name == "mawk" || name == "nawk" || isSed(name)
}

// dynamicLoader matches ld.so under its names (ld-linux-x86-64.so.2,
// ld-musl-x86_64.so.1), which runs the program its arguments name.
var dynamicLoader = regexp.MustCompile(`^ld([-.].*)?\.so(\..*)?$`)

// xargsMayFeed are the programs xargs on a pipe may give what it reads to:
// none of them runs a command its arguments name, whatever they are (sed
// may, after a --: see sedTakesOnlyFiles). Anything else (git -c, tar
// --to-command, sort --compress-program, wget --use-askpass) may.
var xargsMayFeed = map[string]bool{}

func init() {
	for _, n := range strings.Fields(`echo printf cat head tail wc ls stat file du df grep egrep fgrep cut uniq tr
		basename dirname realpath readlink md5sum sha1sum sha256sum sha512sum cksum kill rm rmdir mkdir touch
		chmod chown chgrp ln cp mv unlink truncate gzip gunzip zcat ps id getent dig host nslookup ping curl sleep true false`) {
		xargsMayFeed[n] = true
	}
}

// resolve resolves argv; fed is whether its input may be a pipe that
// carries what it runs.
func resolve(argv []string, depth int, fed bool) ([][]string, string) {
	if depth > maxDepth {
		return nil, "wrappers nested too deep"
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, "an empty command"
	}
	if strings.HasPrefix(argv[0], expands) {
		return nil, "a command name that is not literal: " + unmarked(argv[0])
	}
	if (argv[0] == "!" || argv[0] == "{") && len(argv) > 1 {
		// A keyword before a command, where a wrapper (bash's time) left
		// it: time ! rm, time { rm; }.
		return resolve(argv[1:], depth+1, fed)
	}
	argv = append([]string{cleanPath(argv[0])}, argv[1:]...)
	name := path.Base(argv[0])
	if dynamicLoader.MatchString(name) {
		return nil, name + ", the dynamic loader, runs the program its arguments name"
	}
	if strings.HasPrefix(argv[0], "/proc/") || strings.HasPrefix(argv[0], "/dev/") || name == "exe" || isDigits(name) {
		// /proc/self/exe, /proc/PID/fd/N, /dev/fd/N, /dev/stdin: a program
		// whose name is not its own (env /proc/self/exe rm re-runs env).
		return nil, "a command named by a path that is not its own: " + argv[0]
	}
	for _, multi := range []string{"busybox", "toybox"} {
		if strings.HasPrefix(name, multi) {
			name = multi // busybox.static, busybox-1.36: the multi-call binary still
		}
	}
	if strings.Contains(argv[0], "$") || strings.ContainsAny(argv[0], "`*?[") && argv[0] != "[" && argv[0] != "[[" {
		return nil, "a command name that is not literal: " + argv[0]
	}
	_, wrapped := wrappers[name]
	if runsWhatItIsGiven(name) && !wrapped && !isSed(name) && anyExpands(argv[1:]) {
		// Its arguments name or hold what it runs, and the shell may
		// turn one word into any number of them.
		return nil, name + " given an argument the shell expands ($var, a glob, {a,b})"
	}
	if fed {
		switch {
		case isInterpreter(name) && readsItsProgram(name, argv[1:]):
			return nil, name + " reads its program from its input"
		case isReader(name):
			return nil, name + " runs commands its input gives it"
		case name == "make" && makefileFromInput(argv[1:]):
			return nil, "make reads its makefile from its input"
		}
	}
	if w, ok := wrappers[name]; ok {
		rest, why := w(argv[1:])
		if why != "" {
			return nil, name + ": " + why
		}
		// Its own options and operands, and the command it runs, must be
		// what they read as; the command's arguments are the command's.
		own := argv[1:]
		if n := len(argv) - len(rest); n >= 1 && slices.Equal(argv[n:], rest) {
			own = argv[1:n]
		}
		if anyExpands(own) || len(rest) > 0 && strings.HasPrefix(rest[0], expands) {
			return nil, name + " given an argument the shell expands ($var, a glob, {a,b}) among its own"
		}
		if name == "xargs" && fed {
			// What it runs gets arguments from the input: a program they
			// can make run anything is undecidable; any other is still
			// itself (its input is not the caller's).
			switch {
			case isSed(path.Base(cleanPath(rest[0]))):
				// Decidable when its script is fixed and what xargs adds
				// follows --.
				if !sedTakesOnlyFiles(rest[1:]) {
					return nil, "xargs gives what it reads to sed, which can take it as options or as its script (give sed its script, then --)"
				}
			case !xargsMayFeed[path.Base(cleanPath(rest[0]))]:
				return nil, "xargs gives what it reads to " + path.Base(cleanPath(rest[0])) + ", which may take it as options that run commands (on a pipe, xargs may feed only the programs operators.md lists)"
			}
			fed = false
		}
		if rest == nil {
			// The wrapper runs nothing else (env with no command prints
			// the environment).
			return [][]string{argv}, ""
		}
		inner, why := resolve(rest, depth+1, fed)
		return append([][]string{argv}, inner...), why
	}
	if shells[name] {
		script, ok, readsInput, why := shellScript(argv[1:])
		if why != "" {
			return nil, name + ": " + why
		}
		if readsInput && fed {
			return nil, name + " reads its commands from its input"
		}
		if !ok {
			return [][]string{argv}, "" // interactive, or nothing to read: itself
		}
		if notPOSIX[name] {
			return nil, name + " -c: a grammar other than the POSIX shell's"
		}
		out := [][]string{argv}
		// sh may be bash or dash: each reading it may make is judged.
		for _, d := range dialectsOf(name) {
			simple, piped, why := splitScript(script, d)
			if why != "" {
				return nil, name + " -c: " + why
			}
			for _, c := range simple {
				// A command in a script with a pipe or an input redirection
				// may read either.
				inner, why := resolve(c, depth+1, fed || piped)
				if why != "" {
					return nil, why
				}
				out = append(out, inner...)
			}
		}
		return out, ""
	}
	if why := hidesCommands(name, argv[1:]); why != "" {
		return nil, why
	}
	return [][]string{argv}, ""
}

// hasShort reports whether args, up to a --, hold one of the short options
// letters, alone or in a cluster (-a, -la).
func hasShort(args []string, letters string) bool {
	for _, a := range args {
		switch {
		case a == "--":
			return false
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.ContainsAny(a[1:], letters):
			return true
		}
	}
	return false
}

// plain is argv as the rules match and show it: without the marks of
// words the shell expands.
func plain(argv []string) []string {
	if !anyExpands(argv) {
		return argv
	}
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = unmarked(a)
	}
	return out
}

// cleanPath resolves ./rm, //bin//rm and /bin/../bin/rm.
func cleanPath(p string) string {
	if !strings.Contains(p, "/") {
		return p
	}
	c := path.Clean(p)
	if !strings.HasPrefix(p, "/") {
		return path.Base(c) // relative: only the name is known
	}
	return c
}

// runsArguments run, or rename, what their arguments say.
var runsArguments = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{"sudo", "su", "doas", "runuser", "chroot", "unshare", "nsenter", "script", "expect", "eval", "source", ".", "ssh", "parallel", "watch", "flock", "strace", "ltrace", "unbuffer", "chrt", "numactl", "cgexec", "systemd-run", "start-stop-daemon", "su-exec", "gosu", "setpriv", "capsh", "prlimit",
		"setarch", "linux32", "linux64", "sg", "newgrp", "tini", "dumb-init", "tmux", "screen", "sshpass", "pkexec", "with-contenv",
		"run-parts", "npx", "coreutils", "valgrind", "choom", "ssh-agent", "runcon", "uclampset", "dbus-run-session", "fakeroot",
		"firejail", "bwrap", "proot", "faketime", "torsocks", "proxychains", "proxychains4", "perf", "catchsegv", "chpst",
		"softlimit", "setuidgid", "envdir", "xvfb-run"} {
		m[n] = "runs what its arguments name"
	}
	// Shell builtins.
	for _, n := range []string{"trap", "alias", "hash", "builtin", "mapfile", "readarray", "enable", "complete", "compgen", "bind", "fc"} {
		m[n] = "runs, or renames, what its arguments say"
	}
	m["let"] = "evaluates arithmetic, in which an array subscript runs $(...)"
	m["jobs"] = "runs what its arguments say (jobs -x)"
	m["history"] = "adds commands that history expansion (!!) runs"
	return m
}()

// hidesCommands says why a program whose arguments can name a command to run
// cannot be decided here.
func hidesCommands(name string, args []string) string {
	has := func(flags ...string) bool {
		for _, a := range args {
			for _, f := range flags {
				if a == f || strings.HasPrefix(a, f+"=") {
					return true
				}
			}
		}
		return false
	}
	if isInterpreter(name) && runsCodeInArguments(name, args) {
		return name + " runs the code its arguments hold"
	}
	if why, ok := runsArguments[name]; ok && len(args) > 0 {
		return name + " " + why
	}
	if why := builtinEvaluates(name, args); why != "" {
		return why
	}
	if why := commandsInArguments(name, args); why != "" {
		return why
	}
	switch name {
	case "sed", "gsed":
		return sedRunsCommands(name, args)
	case "find":
		if has("-exec", "-execdir", "-ok", "-okdir") {
			return "find -exec runs what its arguments name"
		}
	case "awk", "gawk", "mawk", "nawk":
		return awkRunsCommands(name, args)
	}
	return ""
}

// awkRunsCommands says why awk with args may run a command, or "": a
// program file or library (-f, gawk's -i and -l, mawk's -W exec), or a
// program with system(), a pipe to or from a command, or gawk's indirect
// call (@f(), which can name system) in it. Only the program's text is
// scanned: -F'|' and the files are not code.
func awkRunsCommands(name string, args []string) string {
	var program []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if len(program) == 0 && i+1 < len(args) {
				program = append(program, args[i+1])
			}
			i = len(args)
		case a == "-" || !strings.HasPrefix(a, "-"):
			if len(program) == 0 {
				program = append(program, a)
			}
			i = len(args) // options end at the program
		case strings.HasPrefix(a, "--"):
			opt, v, hasValue := strings.Cut(a[2:], "=")
			switch {
			case opt == "":
			case strings.HasPrefix("file", opt), strings.HasPrefix("include", opt), strings.HasPrefix("load", opt), strings.HasPrefix("exec", opt):
				return name + " runs a program file"
			case strings.HasPrefix("source", opt):
				if !hasValue && i+1 < len(args) {
					i++
					v = args[i]
				}
				program = append(program, v)
			case !hasValue && (strings.HasPrefix("field-separator", opt) || strings.HasPrefix("assign", opt)):
				i++
			}
		default:
		cluster:
			for j := 1; j < len(a); j++ {
				switch c := a[j]; {
				case strings.IndexByte("fEilW", c) >= 0:
					return name + " runs a program file, or loads code (-" + string(c) + ")"
				case c == 'e' || c == 'F' || c == 'v': // -e is gawk's --source
					v := a[j+1:]
					if v == "" && i+1 < len(args) {
						i++
						v = args[i]
					}
					if c == 'e' {
						program = append(program, v)
					}
					break cluster
				case strings.IndexByte("dDopL", c) >= 0:
					break cluster // an optional value, attached
				}
			}
		}
	}
	for _, p := range program {
		if strings.Contains(p, "system") || strings.Contains(p, "|") || strings.Contains(p, "@") {
			return name + " can run commands from its program"
		}
	}
	return ""
}
