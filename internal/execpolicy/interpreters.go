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

// readers run commands their input gives them (a database client's shell
// escape, an editor's !, a debugger's shell).
var readers = map[string]bool{"psql": true, "mysql": true, "mariadb": true, "sqlite3": true, "ed": true, "ex": true, "vi": true, "vim": true, "nvim": true,
	"gdb": true, "dc": true, "ftp": true, "sftp": true}

// codeFlags are the short options with which an interpreter runs code its
// arguments hold (python -c, perl -e and -M, node -p, php -r and -d, ...),
// and valueFlags those that take the next word (or the rest of their
// cluster) as a value that is not code, by family.
var (
	codeFlags = map[string]string{"python": "c", "pypy": "c", "ipython": "c", "perl": "eEMmx", "ruby": "er", "irb": "er", "node": "epr", "nodejs": "epr",
		"bun": "epr", "php": "rBREFd", "lua": "el", "luajit": "elj", "Rscript": "e", "R": "e", "guile": "ce", "ghci": "e", "julia": "eE", "pwsh": "cCeE", "powershell": "cCeE"}
	valueFlags = map[string]string{"python": "WXQ", "pypy": "WXQ", "ipython": "", "perl": "I", "ruby": "IC", "irb": "I", "node": "", "nodejs": "",
		"php": "cz", "lua": "", "luajit": "", "julia": "JLp"}
)

// codeLongOptions run code their value holds, or load it.
var codeLongOptions = map[string]bool{"eval": true, "print": true, "require": true, "import": true, "loader": true, "experimental-loader": true,
	"command": true, "exec": true, "define": true, "encodedcommand": true, "EncodedCommand": true}

// codeModules are Python modules run with -m that run code their arguments
// or their input hold.
var codeModules = map[string]bool{"timeit": true, "code": true, "pdb": true, "runpy": true, "cProfile": true, "profile": true, "trace": true,
	"doctest": true, "unittest": true, "asyncio": true, "IPython": true, "idlelib": true, "pytest": true}

// interpreterArgs reads an interpreter's options up to its program: whether
// one of them runs code it holds, and the program's operand (the file,
// "-m module" for Python, or "" when there is none).
func interpreterArgs(name string, args []string) (code bool, program string) {
	fam := family(name)
	flags, values := codeFlags[fam], valueFlags[fam]
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return false, args[i+1]
			}
			return false, ""
		case a == "-" || !strings.HasPrefix(a, "-"):
			if fam == "deno" || fam == "bun" {
				// deno eval CODE, bun -e: a subcommand that runs code.
				return a == "eval" || a == "repl", a
			}
			return false, a
		case strings.HasPrefix(a, "--"):
			opt, _, _ := strings.Cut(a[2:], "=")
			if codeLongOptions[opt] {
				return true, ""
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
					return codeModules[strings.SplitN(mod, ".", 2)[0]], "-m " + mod
				case strings.IndexByte(flags, c) >= 0:
					return true, ""
				case strings.IndexByte(values, c) >= 0:
					if j == len(a)-1 {
						i++ // the value is the next word
					}
					j = len(a)
				}
			}
		}
	}
	return false, ""
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
	_, program := interpreterArgs(name, args)
	return program == "" || program == "-" || program == "/dev/stdin" || strings.HasPrefix(program, "/dev/fd/") || strings.HasPrefix(program, "/proc/")
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

// shellEscapeInArguments says why a program with a shell escape (readers)
// is handed commands in its arguments that can use it, or "": psql -c
// '\! rm', mysql -e 'system rm', sqlite3 db '.shell rm', vim -c '!rm', gdb
// -ex 'shell rm', dc -e '!rm', sftp -S rm. What they read from a file is
// their program file, judged as itself.
func shellEscapeInArguments(name string, args []string) string {
	// values returns the values of an option given as -x V, -xV, --long=V
	// or --long V.
	values := func(short string, longs ...string) []string {
		var out []string
		for i := 0; i < len(args); i++ {
			a, next := args[i], ""
			if i+1 < len(args) {
				next = args[i+1]
			}
			switch {
			case short != "" && a == short, slices.Contains(longs, a):
				out = append(out, next)
				i++
			case short != "" && strings.HasPrefix(a, short) && !strings.HasPrefix(a, "--"):
				out = append(out, a[len(short):])
			default:
				for _, l := range longs {
					if v, ok := strings.CutPrefix(a, l+"="); ok {
						out = append(out, v)
					}
				}
			}
		}
		return out
	}
	escapes := func(vals []string, holds func(string) bool) string {
		for _, v := range vals {
			if holds(v) {
				return name + " is given commands that can reach its shell escape: " + v
			}
		}
		return ""
	}
	dotCommand := func(v string) bool {
		for _, l := range strings.Split(v, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), ".") {
				return true
			}
		}
		return false
	}
	switch name {
	case "psql":
		// Meta-commands: \! runs a shell, \o |cmd and \g |cmd pipe to one.
		return escapes(values("-c", "--command"), func(v string) bool { return strings.Contains(v, `\`) })
	case "mysql", "mariadb":
		return escapes(values("-e", "--execute"), func(v string) bool {
			return strings.Contains(v, `\`) || strings.Contains(strings.ToLower(v), "system")
		})
	case "sqlite3":
		// Dot-commands (.shell, .system, .output |cmd) in -cmd, or in the
		// SQL after the database.
		var sql []string
		for i, a := range args {
			if !strings.HasPrefix(a, "-") && (i == 0 || args[i-1] != "-cmd" && args[i-1] != "-init" && args[i-1] != "-separator" && args[i-1] != "-newline" && args[i-1] != "-nullvalue") {
				sql = append(sql, a)
			}
		}
		if len(sql) > 0 {
			sql = sql[1:] // the database file
		}
		return escapes(append(values("-cmd"), sql...), dotCommand)
	case "vi", "vim", "nvim", "ex", "view":
		for _, a := range args {
			if a == "-c" || a == "--cmd" || strings.HasPrefix(a, "+") && len(a) > 1 {
				return name + " is given Ex commands (" + a + "), which can run a shell"
			}
		}
	case "gdb":
		for _, a := range args {
			opt, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if strings.HasPrefix(a, "-") && slices.Contains([]string{"ex", "iex", "eval-command", "init-eval-command"}, opt) {
				return name + " is given commands (" + a + "), which can run a shell"
			}
		}
	case "dc":
		return escapes(values("-e", "--expression"), func(v string) bool { return strings.Contains(v, "!") })
	case "sftp":
		if shortOrLong(args, "SD") {
			return name + " -S or -D runs the program it names"
		}
	}
	return ""
}
