package execpolicy

import (
	"strings"
)

// A wrapper returns the command it runs (nil: none), or why that cannot be
// told.
type wrapper func(args []string) (rest []string, undecidable string)

var wrappers map[string]wrapper

func init() {
	wrappers = map[string]wrapper{
		"env": env,
		// Options with a value, options without, and the leading operands
		// before the command.
		"nice":    options("n", "", 0, "adjustment"),
		"nohup":   options("", "", 0),
		"setsid":  options("", "cfw", 0),
		"stdbuf":  options("ioe", "", 0, "input", "output", "error"),
		"ionice":  options("cnp", "t", 0, "class", "classdata", "pid"),
		"timeout": options("sk", "v", 1, "signal", "kill-after"),
		"taskset": options("", "ac", 1),
		"time":    options("fo", "apqv", 0, "format", "output"),
		"command": options("", "", 0),
		"exec": func(args []string) ([]string, string) {
			for _, a := range args {
				if a == "--" || !strings.HasPrefix(a, "-") {
					break // the command: its own options are its own
				}
				if strings.Contains(a, "a") {
					// exec -a NAME gives the command another argv[0]: a
					// multi-call binary (busybox) runs the applet it names.
					return nil, "-a gives the command another name"
				}
			}
			return options("", "cl", 0)(args)
		},
		"busybox": applets,
		"toybox":  applets,
		"xargs":   xargs,
	}
}

// applets: a multi-call binary runs the applet its first argument names.
func applets(args []string) ([]string, string) {
	if len(args) == 0 {
		return nil, ""
	}
	return args, ""
}

// options skips a wrapper's options: short ones that take a value
// (withValue), short flags (flags), long options with a value (long), and
// then n operands before the command.
func options(withValue, flags string, n int, long ...string) wrapper {
	return func(args []string) ([]string, string) {
		i := 0
		for ; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				i++
				break
			}
			if !strings.HasPrefix(a, "-") || a == "-" {
				break
			}
			if strings.HasPrefix(a, "--") {
				name, _, hasValue := strings.Cut(a[2:], "=")
				if contains(long, name) {
					if !hasValue {
						i++
					}
					continue
				}
				if longFlags[name] {
					continue
				}
				return nil, "an option it does not know: " + a
			}
			// -n5, -n 5, -cv: each letter a flag, up to one taking a value.
			for j := 1; j < len(a); j++ {
				c := a[j]
				switch {
				case strings.IndexByte(withValue, c) >= 0:
					if j == len(a)-1 {
						i++
					}
					j = len(a)
				case strings.IndexByte(flags, c) >= 0:
				case c >= '0' && c <= '9' && withValue == "n":
					j = len(a) // nice -5
				default:
					return nil, "an option it does not know: " + a
				}
			}
		}
		if i+n >= len(args) {
			return nil, "" // no command: it runs nothing else
		}
		return args[i+n:], ""
	}
}

// longFlags are the wrappers' long options that take no value.
var longFlags = map[string]bool{"preserve-status": true, "foreground": true, "verbose": true, "fork": true, "ctty": true, "wait": true, "all-tasks": true, "cpu-list": true, "portability": true, "append": true, "quiet": true}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// env [-i] [-u NAME] [-C DIR] [NAME=VALUE]... [COMMAND [ARG]...]; -S splits a
// string into the command, which is not decided here.
func env(args []string) ([]string, string) {
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			i++
			for i < len(args) && strings.Contains(args[i], "=") {
				if why := codeInEnvironment(args[i]); why != "" {
					return nil, why
				}
				i++
			}
			if i == len(args) {
				return nil, ""
			}
			return args[i:], ""
		case a == "-i" || a == "-" || a == "--ignore-environment" || a == "-0" || a == "--null" || a == "-v" || a == "--debug":
		case a == "-u" || a == "-C" || a == "--unset" || a == "--chdir":
			i++
		case strings.HasPrefix(a, "--unset=") || strings.HasPrefix(a, "--chdir=") || (strings.HasPrefix(a, "-u") && len(a) > 2) || (strings.HasPrefix(a, "-C") && len(a) > 2):
		case strings.HasPrefix(a, "-S") || strings.HasPrefix(a, "--split-string"):
			return nil, "-S splits a string into a command"
		case strings.HasPrefix(a, "-"):
			return nil, "an option it does not know: " + a
		case strings.Contains(a, "="):
			if why := codeInEnvironment(a); why != "" {
				return nil, why
			}
		default:
			return args[i:], ""
		}
	}
	return nil, ""
}

// codeInEnvironment says why an assignment NAME=VALUE for a command's
// environment can make it run code that is not on its command line (bash's
// startup file and exported functions, the dynamic loader's preloads, an
// interpreter's startup options), or "".
func codeInEnvironment(assignment string) string {
	name, _, _ := strings.Cut(unmarked(assignment), "=")
	name = strings.TrimSuffix(name, "+") // NAME+=value
	switch {
	// BASH_*: BASH_ENV, exported functions, and the hash and alias tables
	// (BASH_CMDS, BASH_ALIASES) that rename commands. GIT_CONFIG_*: git
	// configuration (an alias with !) from the environment.
	case strings.HasPrefix(name, "BASH_"), strings.HasPrefix(name, "LD_"), strings.HasPrefix(name, "DYLD_"), strings.HasPrefix(name, "LUA_INIT"), strings.HasPrefix(name, "GIT_CONFIG"):
	default:
		switch name {
		case "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND",
			"PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PYTHONINSPECT",
			"PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS", "NODE_PATH",
			"PHPRC", "PHP_INI_SCAN_DIR", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
			"PAGER", "MANPAGER", "GIT_PAGER", "EDITOR", "VISUAL", "GIT_EDITOR", "LESSOPEN", "LESSCLOSE",
			"GIT_SSH", "GIT_SSH_COMMAND", "GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "SSH_ASKPASS",
			// Where a shell and others find their startup files, and the
			// browser Python's webbrowser runs.
			"HOME", "ZDOTDIR", "XDG_CONFIG_HOME", "BROWSER", "PYTHONWARNINGS",
			// Options and commands of programs, from the environment.
			"TAR_OPTIONS", "MAKEFLAGS", "GNUMAKEFLAGS", "MFLAGS", "MAKEFILES", "MANOPT", "LESS", "PSQL_PAGER", "PSQL_EDITOR",
			"SYSTEMD_PAGER", "SYSTEMD_EDITOR", "SUDO_EDITOR", "FCEDIT", "RSYNC_RSH", "RSYNC_CONNECT_PROG",
			"GIT_SEQUENCE_EDITOR", "GIT_PROXY_COMMAND", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_DIR",
			"VIMINIT", "EXINIT", "MYVIMRC":
		default:
			return ""
		}
	}
	return "sets " + name + ", with which a program runs code its command line does not show"
}

// xargs [options] [COMMAND [ARG]...]: runs COMMAND (default echo) with
// arguments read from stdin, which are not seen here: they cannot change
// which command runs, but may be options that make it run another (see
// xargsMayFeed). Reading them from a file (-a), or putting them in place of
// a string (-I), is undecidable.
func xargs(args []string) ([]string, string) {
	// Short options with a value (-n 1, -n1, -d '\n'), flags, and the long
	// options with a value.
	const withValue, flags = "dnPLsE", "0rtpx"
	longValue := map[string]bool{"delimiter": true, "max-args": true, "max-procs": true, "max-lines": true, "max-chars": true, "eof": true}
	longFlag := map[string]bool{"null": true, "no-run-if-empty": true, "verbose": true, "interactive": true, "exit": true, "show-limits": true}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		if strings.HasPrefix(a, "--") {
			name, _, hasValue := strings.Cut(a[2:], "=")
			switch {
			case name == "arg-file" || name == "replace" || name == "open-tty":
				return nil, a + " puts what it reads into the command, or gives it a terminal"
			case name == "process-slot-var":
				return nil, a + " sets a variable the command gets (BASH_ENV among those that run code)"
			case longValue[name]:
				if !hasValue {
					i++
				}
			case longFlag[name]:
			default:
				return nil, "an option it does not know: " + a
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case c == 'a' || c == 'I' || c == 'i' || c == 'o':
				// -a FILE and -I/-i placeholders put what it reads into
				// the command; -o gives it a terminal.
				return nil, a + " puts what it reads into the command, or gives it a terminal"
			case c == 'e' || c == 'l':
				j = len(a) // an optional value, attached if any
			case strings.IndexByte(withValue, c) >= 0:
				if j == len(a)-1 {
					i++
				}
				j = len(a)
			case strings.IndexByte(flags, c) >= 0:
			default:
				return nil, "an option it does not know: " + a
			}
		}
	}
	if i >= len(args) {
		return []string{"echo"}, ""
	}
	return args[i:], ""
}
