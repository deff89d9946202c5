package execpolicy

import (
	"regexp"
	"slices"
	"strings"
)

// interpreter matches the programs that run a program they are given — from
// a file, their arguments or their input — under any version's name
// (python3.11, python3.7m, perl5.36, luajit-2.1.0-beta3, nodejs).
var interpreter = regexp.MustCompile(`^(python|pypy|ipython|perl|ruby|irb|node|nodejs|bun|deno|php|lua|luajit|tclsh|wish|Rscript|R|guile|ghci|julia|pwsh|powershell)([0-9][0-9a-z._-]*|-[0-9][0-9a-z._-]*)?$`)

// family is an interpreter's name without its version.
func family(name string) string {
	return interpreter.FindStringSubmatch(name)[1]
}

func isInterpreter(name string) bool { return interpreter.MatchString(name) }

// readers run commands their input gives them: a database client's shell
// escape, an editor's !, a debugger's shell, what starts a shell when given
// no command (su, nsenter, unshare, script, newgrp, sg), and what reads the
// commands it runs (parallel, expect).
var readers = map[string]bool{"psql": true, "mysql": true, "mariadb": true, "sqlite3": true, "ed": true,
	"gdb": true, "dc": true, "bc": true, "m4": true, "ftp": true, "sftp": true,
	"su": true, "nsenter": true, "unshare": true, "script": true, "newgrp": true, "sg": true, "parallel": true, "expect": true}

// vi is the vi family under its names (vim.basic, vim.tiny, view, rvim, ...).
var vi = regexp.MustCompile(`^(ex|vi|vim|nvim|view|rview|rvim|gvim|evim|vimdiff|vim\.[a-z]+)$`)

func isReader(name string) bool { return readers[name] || vi.MatchString(name) }

// optionsRunCommands are the programs besides readers whose options or
// subcommands can name a command to run (commandsInArguments reads them).
var optionsRunCommands = map[string]bool{"scp": true, "rsync": true, "tar": true, "sort": true, "make": true, "gmake": true,
	"man": true, "zip": true, "rg": true, "ip": true, "apt-get": true, "apt": true, "dpkg": true, "git": true, "emacs": true,
	"less": true, "more": true}

// gitFlags are git's global options that take no value.
var gitFlags = []string{"-p", "--paginate", "-P", "--no-pager", "--bare", "--no-replace-objects", "--literal-pathspecs",
	"--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs", "--no-optional-locks", "--no-advice", "--no-lazy-fetch",
	"--version", "-v", "--help", "-h", "--html-path", "--man-path", "--info-path", "--exec-path"}

// dotCommand is a line of sqlite3 input that is a dot-command; sqliteEdit
// its edit() function, which runs the editor its second argument names.
var (
	dotCommand = regexp.MustCompile(`(?m)^\s*\.[A-Za-z]`)
	sqliteEdit = regexp.MustCompile(`(?i)\bedit\s*\(`)
)

// codeFlags are the short options with which an interpreter runs code its
// arguments hold (python -c, perl -e and -M, node -p, php -r and -d, ...),
// and valueFlags those that take the next word (or the rest of their
// cluster) as a value that is not code, by family.
var (
	codeFlags = map[string]string{"python": "c", "pypy": "c", "ipython": "c", "perl": "eEMmx", "ruby": "er", "irb": "er", "node": "epr", "nodejs": "epr",
		"bun": "epr", "php": "rBREFd", "lua": "el", "luajit": "elj", "Rscript": "e", "R": "e", "guile": "ce", "ghci": "e", "julia": "eE", "pwsh": "cCeE", "powershell": "cCeE"}
	valueFlags = map[string]string{"python": "WXQ", "pypy": "WXQ", "ipython": "", "perl": "I", "ruby": "IC", "irb": "I", "node": "", "nodejs": "",
		"php": "cz", "lua": "", "luajit": "", "julia": "JLp"}
	// inputFlags make an interpreter read code from its input after its
	// program: python -i, perl -d (its debugger reads commands), lua -i.
	inputFlags = map[string]string{"python": "i", "pypy": "i", "ipython": "i", "perl": "d", "lua": "i", "luajit": "i"}
	// alwaysReads: interpreters that read their input whatever program they
	// load (ghci, R, irb).
	alwaysReads = map[string]bool{"ghci": true, "R": true, "irb": true}
)

// codeLongOptions run code their value holds, or load it.
var codeLongOptions = map[string]bool{"eval": true, "print": true, "require": true, "import": true, "loader": true, "experimental-loader": true,
	"command": true, "exec": true, "define": true, "encodedcommand": true, "EncodedCommand": true}

// codeModules are Python modules run with -m that run code their arguments
// or their input hold.
var codeModules = map[string]bool{"timeit": true, "code": true, "pdb": true, "runpy": true, "cProfile": true, "profile": true, "trace": true,
	"doctest": true, "unittest": true, "asyncio": true, "IPython": true, "idlelib": true, "pytest": true, "pickle": true}

// interpreterArgs reads an interpreter's options up to its program: whether
// one of them runs code it holds, and the program's operand (the file,
// "-m module" for Python, or "" when there is none).
func interpreterArgs(name string, args []string) (code bool, program string) {
	code, program, _ = readInterpreterArgs(name, args)
	return code, program
}

// readInterpreterArgs is interpreterArgs, and whether an option makes the
// interpreter read code from its input after its program (inputFlags).
func readInterpreterArgs(name string, args []string) (code bool, program string, input bool) {
	fam := family(name)
	flags, values := codeFlags[fam], valueFlags[fam]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return false, args[i+1], input
			}
			return false, "", input
		case a == "-" || !strings.HasPrefix(a, "-"):
			if fam == "deno" || fam == "bun" {
				// deno eval CODE, bun -e: a subcommand that runs code.
				return a == "eval" || a == "repl", a, input
			}
			return false, a, input
		case strings.HasPrefix(a, "--"):
			opt, _, _ := strings.Cut(a[2:], "=")
			if codeLongOptions[opt] {
				return true, "", input
			}
		default:
			for j := 1; j < len(a); j++ {
				c := a[j]
				switch {
				case c == 'm' && (fam == "python" || fam == "pypy"):
					mod := a[j+1:]
					if mod == "" && i+1 < len(args) {
						mod = args[i+1]
					}
					return codeModules[strings.SplitN(mod, ".", 2)[0]], "-m " + mod, input
				case strings.IndexByte(flags, c) >= 0:
					return true, "", input
				case strings.IndexByte(inputFlags[fam], c) >= 0:
					input = true
				case strings.IndexByte(values, c) >= 0:
					if j == len(a)-1 {
						i++ // the value is the next word
					}
					j = len(a)
				}
			}
		}
	}
	return false, "", input
}

// runsCodeInArguments: an option before the interpreter's program runs code
// (-e, -pe, -e'code', --eval), or a Python module that does (-m timeit).
func runsCodeInArguments(name string, args []string) bool {
	code, _ := interpreterArgs(name, args)
	return code
}

// readsItsProgram says whether an interpreter with args reads its program
// from its input: no program file or module names it, or it is the input.
func readsItsProgram(name string, args []string) bool {
	_, program, input := readInterpreterArgs(name, args)
	return input || alwaysReads[family(name)] || program == "" || program == "-" || program == "/dev/stdin" || strings.HasPrefix(program, "/dev/fd/") || strings.HasPrefix(program, "/proc/")
}

// makefileFromInput: make's arguments name its input as the makefile (-f -).
func makefileFromInput(args []string) bool {
	for i, a := range args {
		if a == "-f-" || a == "--file=-" || (a == "-f" || a == "--file") && i+1 < len(args) && args[i+1] == "-" {
			return true
		}
	}
	return false
}

// optionValues returns the values an option is given on a command line
// read as getopt_long reads it, erring towards finding one: in a cluster
// (-Xc V, -XcV), or as a long option or any prefix of it (--command=V,
// --com V; with oneDash also -command V, as sqlite3 and gdb take them).
// Not knowing which other options take a value, it reads every word, a --
// or an option's value too, as a possible option (tar --exclude --
// --to-command=... must not hide the last).
func optionValues(args []string, short byte, long string, oneDash bool) []string {
	var out []string
	for i, a := range args {
		next := ""
		if i+1 < len(args) {
			next = args[i+1]
		}
		if strings.HasPrefix(a, "--") || oneDash && strings.HasPrefix(a, "-") && len(a) > 2 {
			name, v, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if name != "" && long != "" && strings.HasPrefix(long, name) {
				if !hasValue {
					v = next
				}
				out = append(out, v)
			}
		}
		if short != 0 && strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") {
			if j := strings.IndexByte(a[1:], short); j >= 0 {
				v := a[j+2:]
				if v == "" {
					v = next
				}
				out = append(out, v)
			}
		}
	}
	return out
}

// clusterValues reads short options as getopt does, with valued the
// letters that take a value (the rest of their word, or the next): the
// values each letter was given. Like optionValues, it reads every word as
// a possible option, a value or a -- too.
func clusterValues(args []string, valued string) map[byte][]string {
	out := map[byte][]string{}
	for i, a := range args {
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") {
			continue
		}
		for j := 1; j < len(a); j++ {
			if c := a[j]; strings.IndexByte(valued, c) >= 0 {
				v := a[j+1:]
				if v == "" && i+1 < len(args) {
					v = args[i+1]
				}
				out[c] = append(out[c], v)
				break
			}
		}
	}
	return out
}

// commandsInArguments says why a program is handed, in its arguments,
// commands it runs by its own logic, or "": a shell escape (psql -c '\!
// rm', mysql -e 'system rm', sqlite3 db '.shell rm', vim -c '!rm', gdb -ex
// 'shell rm', dc -e '!rm'), a program to run instead of ssh or a
// compressor (sftp -S, scp -o ProxyCommand=..., rsync -e, tar
// --to-command, -I), or git configuration (git -c alias.x='!rm'). What
// they read from a file is their program file, judged as itself.
func commandsInArguments(name string, args []string) string {
	holding := func(what string, vals []string, holds func(string) bool) string {
		for _, v := range vals {
			if holds(v) {
				return name + " is given " + what + ": " + v
			}
		}
		return ""
	}
	has := func(subs ...string) func(string) bool {
		return func(v string) bool {
			for _, sub := range subs {
				if strings.Contains(strings.ToLower(v), sub) {
					return true
				}
			}
			return false
		}
	}
	switch {
	case name == "psql":
		// \! runs a shell; \o, \g and \w pipe to one with |; backticks
		// run one in a meta-command; COPY ... PROGRAM and \copy ... program;
		// \setenv sets PAGER.
		return holding("commands that can run a shell", optionValues(args, 'c', "command", false),
			has(`\!`, "`", "program", `\setenv`, `\o`, `\g`, `\w`, `\i`))
	case name == "mysql" || name == "mariadb":
		return holding("commands that can run a shell", optionValues(args, 'e', "execute", false), has(`\!`, "system"))
	case name == "sqlite3":
		// Dot-commands (.shell, .system, .output |cmd) in -cmd, or in the
		// SQL after the database (any operand: a dot-command where the
		// database is named is read as one too).
		var operands []string
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				operands = append(operands, a)
			}
		}
		return holding("dot-commands or edit(), which can run a shell", append(optionValues(args, 0, "cmd", true), operands...), func(v string) bool {
			return dotCommand.MatchString(v) || sqliteEdit.MatchString(v)
		})
	case vi.MatchString(name):
		// -c in a cluster too (vim -Nesc '!cmd'), --cmd, +cmd.
		for _, a := range args {
			if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "c") || strings.HasPrefix(a, "--cmd") || strings.HasPrefix(a, "+") && len(a) > 1 {
				return name + " is given Ex commands (" + a + "), which can run a shell"
			}
		}
	case name == "emacs":
		for _, a := range args {
			n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if strings.HasPrefix(a, "-") && (n == "eval" || n == "execute" || n == "f" || n == "funcall" || n == "x" || n == "script") {
				return name + " is given Lisp to run (" + a + "), which can run a shell"
			}
		}
	case name == "less" || name == "more":
		for _, a := range args {
			if strings.HasPrefix(a, "+") && strings.Contains(a, "!") {
				return name + " is given a command to start with (" + a + "), which runs a shell"
			}
		}
	case name == "gdb":
		for _, a := range args {
			n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if strings.HasPrefix(a, "-") && (n == "ex" || n == "iex" || len(n) > 1 && (strings.HasPrefix("eval-command", n) || strings.HasPrefix("init-eval-command", n))) {
				return name + " is given commands (" + a + "), which can run a shell"
			}
		}
	case name == "dc":
		return holding("commands that can run a shell", optionValues(args, 'e', "expression", false), has("!"))
	case name == "sftp" || name == "scp":
		// -S: the program run instead of ssh; -D (sftp): the server run;
		// -o: ssh options, ProxyCommand, LocalCommand and Match exec among
		// them.
		valued := "cDFiJloPSX" // scp
		if name == "sftp" {
			valued = "BbcDFiJloPRSX"
		}
		vals := clusterValues(args, valued)
		if len(vals['S']) > 0 || len(vals['D']) > 0 {
			return name + " -S or -D names the program it runs"
		}
		return holding("an ssh option that runs a command", vals['o'], has("command", "match"))
	case name == "rsync":
		if len(clusterValues(args, "efBTM")['e']) > 0 || len(optionValues(args, 0, "rsh", false)) > 0 {
			return name + " -e (--rsh) names the command it runs"
		}
	case name == "tar":
		for _, long := range []string{"to-command", "checkpoint-action", "use-compress-program", "rsh-command", "info-script", "new-volume-script"} {
			if len(optionValues(args, 0, long, false)) > 0 {
				return name + " --" + long + " names a command it runs"
			}
		}
		// -I and -F, also in the old form without a dash (tar xIf ...).
		if len(optionValues(args, 'I', "", false)) > 0 || len(optionValues(args, 'F', "", false)) > 0 ||
			len(args) > 0 && !strings.HasPrefix(args[0], "-") && strings.ContainsAny(args[0], "IF") {
			return name + " -I or -F names a command it runs"
		}
	case name == "sort":
		if len(optionValues(args, 0, "compress-program", false)) > 0 {
			return name + " --compress-program names a command it runs"
		}
	case name == "make" || name == "gmake":
		// --eval / -E: a makefile line, $(shell ...) included; a variable
		// on the command line whose value make expands or runs (X!=cmd,
		// X=$(shell cmd)).
		if len(optionValues(args, 'E', "eval", false)) > 0 {
			return name + " --eval runs a makefile line it is given"
		}
		for _, a := range args {
			if strings.Contains(a, "=") && (strings.Contains(a, "$") || strings.Contains(a, "!=")) {
				return name + " is given a variable it expands or runs (" + a + ")"
			}
		}
	case name == "man":
		if len(clusterValues(args, "PCMLmpRSe")['P']) > 0 || len(optionValues(args, 0, "pager", false)) > 0 || len(optionValues(args, 0, "html", false)) > 0 ||
			slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-H") && len(a) > 2 }) {
			return name + " -P (--pager) or -H (--html) names the command it runs"
		}
	case name == "zip":
		if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "-TT") }) || len(optionValues(args, 0, "unzip-command", false)) > 0 {
			return name + " -TT (--unzip-command) names the command it runs"
		}
	case name == "rg":
		if len(optionValues(args, 0, "pre", false)) > 0 {
			return name + " --pre names a command it runs"
		}
	case name == "ip":
		if slices.Contains(args, "exec") || len(clusterValues(args, "bfn")['b']) > 0 || len(optionValues(args, 0, "batch", true)) > 0 {
			return name + " netns exec runs what its arguments name"
		}
	case name == "apt-get" || name == "apt":
		if len(clusterValues(args, "cot")['o']) > 0 || len(optionValues(args, 0, "option", false)) > 0 {
			return name + " -o can set hooks that run commands (APT::Update::Pre-Invoke)"
		}
	case name == "dpkg":
		for _, long := range []string{"pre-invoke", "post-invoke", "status-logger"} {
			if len(optionValues(args, 0, long, false)) > 0 {
				return name + " --" + long + " names a command it runs"
			}
		}
	case name == "git":
		// git -c NAME=VALUE (an alias with !, core.fsmonitor, core.pager,
		// ...), --config-env, and transports' programs.
		for i := 0; i < len(args); i++ {
			a := args[i]
			opt, _, hasValue := strings.Cut(a, "=")
			switch {
			case a == "-C" || !hasValue && slices.Contains([]string{"--git-dir", "--work-tree", "--namespace", "--super-prefix", "--list-cmds", "--attr-source"}, opt):
				i++ // a global option's value, not the subcommand
				continue
			case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "-c") && !strings.HasPrefix(a, "--config-env") && !hasValue && !slices.Contains(gitFlags, a):
				// A global option it does not know may take the next word:
				// the subcommand could not be told.
				return name + ": an option it does not know: " + a
			}
			if !strings.HasPrefix(a, "-") {
				// Past the subcommand: options that name a program to run
				// (--upload-pack, -u for the commands that fetch, rebase
				// -x, difftool -x, grep -O), and subcommands that run
				// their arguments.
				sub, rest := a, args[i+1:]
				switch sub {
				case "bisect", "submodule", "filter-branch", "mergetool":
					return name + " " + sub + " can run commands its arguments name"
				}
				if sub == "clone" && (len(optionValues(rest, 'c', "config", false)) > 0) {
					return name + " clone -c sets configuration, with which git runs commands"
				}
				for _, long := range []string{"upload-pack", "receive-pack", "exec", "extcmd", "open-files-in-pager", "tool"} {
					if len(optionValues(rest, 0, long, false)) > 0 {
						return name + " " + sub + " --" + long + " names a command it runs"
					}
				}
				short := map[string]byte{"clone": 'u', "ls-remote": 'u', "fetch": 'u', "pull": 'u', "rebase": 'x', "difftool": 'x', "grep": 'O'}
				if c, ok := short[sub]; ok && len(optionValues(rest, c, "", false)) > 0 {
					return name + " " + sub + " -" + string(c) + " names a command it runs"
				}
				break
			}
			if a == "-c" || strings.HasPrefix(a, "--config-env") || strings.HasPrefix(a, "-c") && len(a) > 2 && !strings.HasPrefix(a, "--") {
				return name + " -c sets configuration, with which git runs commands"
			}
		}
	}
	return ""
}
