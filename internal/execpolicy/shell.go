package execpolicy

import (
	"regexp"
	"slices"
	"strings"
)

// shells run a -c string, a script file, or what they read.
var shells = map[string]bool{"sh": true, "bash": true, "rbash": true, "dash": true, "zsh": true, "ash": true, "hush": true, "ksh": true, "ksh93": true,
	"mksh": true, "lksh": true, "oksh": true, "pdksh": true, "posh": true, "yash": true, "fish": true, "csh": true, "tcsh": true}

// notPOSIX are shells whose -c strings follow a grammar of their own (zsh
// expands =cmd to a path and runs code from glob qualifiers; fish, csh).
var notPOSIX = map[string]bool{"zsh": true, "fish": true, "csh": true, "tcsh": true}

// dialect is what a shell's grammar has beyond POSIX's: bash's [[ ... ]]
// (inside which && || ( ) < > are words) and $'...' (where \' is a quote).
// dash reads [[ as a command and $'...' as a $ and a plain quote.
type dialect struct{ brackets, ansiC bool }

// dialectsOf are the readings a shell's -c string may get: one for a shell
// known to be bash-like or dash-like, both for sh and busybox's ash, which
// may be either.
func dialectsOf(shell string) []dialect {
	switch shell {
	case "bash", "rbash", "ksh", "ksh93", "mksh", "lksh", "oksh", "pdksh":
		return []dialect{{brackets: true, ansiC: true}}
	case "dash", "posh":
		return []dialect{{}}
	}
	return []dialect{{brackets: true, ansiC: true}, {}}
}

// shellScript finds a shell's -c string. ok is false for a shell that reads
// its commands from its input (no -c, no script file, or -s); readsInput is
// whether it reads them from there, after a -c string too (dash -cs).
func shellScript(args []string) (script string, ok bool, readsInput bool, undecidable string) {
	dashC, dashS := false, false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				if dashC {
					return args[i+1], true, dashS, ""
				}
				if dashS {
					return "", false, true, ""
				}
				return "", false, false, "runs the script file " + args[i+1]
			}
			if dashC {
				return "", false, false, "-c without a command string"
			}
			return "", false, true, ""
		case a == "--rcfile" || a == "--init-file" || strings.HasPrefix(a, "--rcfile=") || strings.HasPrefix(a, "--init-file="):
			return "", false, false, "runs the startup file it names"
		case strings.HasPrefix(a, "--"):
			// --login, --norc, --posix, ...
		case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+"):
			if strings.ContainsRune(a[1:], 'c') {
				dashC = true
			}
			if strings.ContainsRune(a[1:], 's') {
				dashS = true // reads commands from its input (after -c's string, for dash)
			}
			// -o and -O take the next word as their value, in a cluster
			// too (bash -co pipefail 'cmd').
			n := strings.Count(a[1:], "o") + strings.Count(a[1:], "O")
			if a[0] == '-' && strings.ContainsRune(a[1:], 'k') || a[0] == '-' && slices.Contains(args[i+1:min(len(args), i+1+n)], "keyword") {
				// -k: NAME=value words after a command's name go into its
				// environment, past every check of assignments.
				return "", false, false, "-k puts the NAME=value words after a command into its environment"
			}
			i += n
		default:
			if dashC {
				return a, true, dashS, ""
			}
			if dashS {
				return "", false, true, "" // sh -s ARG...: the arguments are $1...
			}
			return "", false, false, "runs the script file " + a
		}
	}
	if dashC {
		return "", false, false, "-c without a command string"
	}
	return "", false, true, ""
}

// splitScript splits a -c string into simple commands, unquoting words as
// the shell would; anything that runs code it does not show — substitutions,
// process substitution, compound commands it does not follow — is
// undecidable. piped is whether the script has a pipe or an input
// redirection, through which one of its commands may read what another
// wrote, or a file, or a string.
func splitScript(script string, d dialect) (cmds [][]string, piped bool, undecidable string) {
	words, why := tokenize(script, d)
	if why != "" {
		return nil, false, why
	}
	var out [][]string
	var cur []string
	skipNext := false
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
		}
		cur = nil
	}
	brackets := false // inside [[ ... ]], where && || ( ) < > are words
	timed := false    // just after bash's time keyword
	fresh := true     // nothing of the current simple command read yet
	for _, w := range words {
		switch {
		case brackets:
			t := w.text
			if w.op != "" {
				t = w.op
			}
			cur = append(cur, t)
			brackets = !(w.op == "" && w.text == "]]" && !w.quoted)
		case fresh && d.brackets && !w.quoted && w.text == "[[":
			// A keyword only as a command's first word: after an
			// assignment or a redirection it is a command named [[.
			cur, brackets = append(cur, w.text), true
		case w.op != "":
			switch w.op {
			case "<", "<>", "<<<":
				piped = true
				skipNext = true // the next word is a file (or a string)
			case ">", ">>", ">|", "&>", "&>>":
				skipNext = true
			case "<<", "<<-":
				return nil, false, "a here-document"
			case "|":
				piped = true
				flush()
			default: // ; & && || ( ) newline
				flush()
			}
		case skipNext:
			skipNext = false
			if t := unmarked(w.text); strings.HasPrefix(t, "/dev/tcp/") || strings.HasPrefix(t, "/dev/udp/") {
				// bash opens a connection both ways, whatever the arrow.
				return nil, false, "a redirection to a network connection (" + t + ")"
			}
		case len(cur) == 0 && !w.quoted && isAssignment(w.text):
			// FOO=bar cmd: the assignment is not the command, unless it
			// makes the command run code (BASH_ENV=..., LD_PRELOAD=...).
			if why := codeInEnvironment(w.text); why != "" {
				return nil, false, why
			}
		case len(cur) == 0 && !w.quoted && (w.text == "if" || w.text == "then" || w.text == "else" || w.text == "elif" || w.text == "fi" ||
			w.text == "do" || w.text == "done" || w.text == "while" || w.text == "until" || w.text == "!" || w.text == "{" || w.text == "}" ||
			w.text == "time" || timed && w.text == "-p"):
			// Keywords before a command; bash's time times a whole
			// pipeline, assignments and compound commands included (in
			// dash, /usr/bin/time would run the next word: read as a
			// command here, which is stricter).
			timed = w.text == "time"
			continue
		case len(cur) == 0 && !w.quoted && (w.text == "for" || w.text == "case" || w.text == "select" || w.text == "function" || w.text == "coproc"):
			return nil, false, "a compound command (" + w.text + ")"
		default:
			cur = append(cur, w.text)
		}
		timed = false
		// After a separator a command starts afresh (keywords, which
		// continue above, leave it so); after an assignment, a
		// redirection or a word it has begun.
		fresh = len(cur) == 0 && w.op != "" && !strings.ContainsAny(w.op, "<>")
	}
	flush()
	if brackets {
		return nil, false, "a [[ without its ]]"
	}
	if len(out) == 0 {
		return nil, false, "no command in the -c string"
	}
	return out, piped, ""
}

type word struct {
	text string
	op   string
	// quoted: a quote or backslash before any '=', so that the word is
	// neither a keyword nor an assignment ("a"=x runs a command a=x).
	quoted bool
}

// expands marks a word the shell expands before the command sees it — a
// parameter ($v, ${v}, $'...'), a glob, a brace expansion ({a,b}) — whose
// text is therefore not what the command gets, nor necessarily one
// argument. No argument can hold a NUL, so the mark cannot be forged.
const expands = "\x00"

// unmarked is a word's text without the mark.
func unmarked(w string) string { return strings.TrimPrefix(w, expands) }

// anyExpands reports whether one of words is marked.
func anyExpands(words []string) bool {
	for _, w := range words {
		if strings.HasPrefix(w, expands) {
			return true
		}
	}
	return false
}

// expansion reports whether s[i], a '$' outside single quotes, starts a
// parameter expansion or a $'...' string.
func expansion(s string, i int) bool {
	if i+1 == len(s) {
		return false
	}
	c := s[i+1]
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("{@*#?!$-'\"", c) >= 0
}

// plainParameter is a ${...} whose reading is plain: a name, a positional
// or special parameter, its length, or a default, alternative, error or
// prefix/suffix removal (not an assignment, ${X:=...}) with a word that holds no quote, escape,
// expansion or bracket. Anything else — an array subscript, ${!x},
// ${s:offset}, nested quotes — bash evaluates or nests past what the
// tokenizer follows (a subscript or an offset is arithmetic, which runs
// $(...) held in a variable).
var plainParameter = regexp.MustCompile(`^#?([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])((:?[-+?]|##?|%%?)[^'"` + "`" + `\\${}\[\]()]*)?$`)

// parameter reads the '$' at s[i] (inside double quotes if quoted): how
// many bytes it takes (all of a ${...} or $'...', else one), or why it
// cannot be read ($[...], a ${...} that is not plain).
func parameter(s string, i int, quoted bool) (int, string) {
	if i+1 == len(s) {
		return 1, ""
	}
	switch s[i+1] {
	case '\'':
		if quoted {
			return 1, "" // in "...", $' is a $ and a quote
		}
		// bash's $'...': a backslash escapes the next byte, a quote
		// included ($'\'' is one quote).
		for j := i + 2; j < len(s); j++ {
			switch s[j] {
			case '\\':
				j++
			case '\'':
				return j - i + 1, ""
			}
		}
		return 0, "an unterminated quote"
	case '[':
		return 0, "arithmetic ($[...]), in which an array subscript runs $(...)"
	case '{':
		j := strings.IndexByte(s[i+2:], '}')
		if j < 0 || !plainParameter.MatchString(s[i+2:i+2+j]) {
			return 0, "a parameter expansion it does not read: " + s[i:min(len(s), i+2+max(j, 0)+1)]
		}
		return j + 3, ""
	}
	return 1, ""
}

// tokenize splits a POSIX shell string into words and operators.
func tokenize(s string, d dialect) ([]word, string) {
	var out []word
	var b strings.Builder
	inWord, expanded, bracket, braces, quoted := false, false, false, false, false
	end := func() {
		if inWord {
			t := b.String()
			if expanded || braces && t != "{" && t != "}" {
				t = expands + t
			}
			out = append(out, word{text: t, quoted: quoted})
			b.Reset()
			inWord, expanded, bracket, braces, quoted = false, false, false, false, false
		}
	}
	quote := func() { quoted = quoted || !strings.Contains(b.String(), "=") }
	// dollar copies the parameter at s[i] into the word, and returns
	// where it ends.
	dollar := func(i int, quoted bool) (int, string) {
		n, why := parameter(s, i, quoted || !d.ansiC)
		if why != "" {
			return i, why
		}
		expanded = expanded || n > 1 || expansion(s, i)
		b.WriteString(s[i : i+n])
		return i + n - 1, ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			quote()
			if i+1 < len(s) {
				i++
				if s[i] == '\n' {
					return nil, "a line continuation (a backslash before a newline)"
				}
				b.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			quote()
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, "an unterminated quote"
			}
			b.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '"':
			quote()
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch {
				case s[i] == '\\' && i+1 < len(s) && s[i+1] == '\n':
					return nil, "a line continuation (a backslash before a newline)"
				case s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0:
					i++
					b.WriteByte(s[i])
				case s[i] == '`' || (s[i] == '$' && i+1 < len(s) && s[i+1] == '('):
					return nil, "a command substitution"
				case s[i] == '$':
					var why string
					if i, why = dollar(i, true); why != "" {
						return nil, why
					}
				default:
					b.WriteByte(s[i])
				}
			}
			if i >= len(s) {
				return nil, "an unterminated quote"
			}
			inWord = true
		case c == '$' && strings.HasPrefix(s[i:], "$(("):
			return nil, "arithmetic $((...)), in which an array subscript runs $(...)"
		case c == '`' || (c == '$' && i+1 < len(s) && s[i+1] == '('):
			return nil, "a command substitution"
		case c == '&' && i+1 < len(s) && s[i+1] == '>':
			// bash: a redirection of both outputs; dash: & and then a
			// command that starts with a redirection.
			return nil, "&>, which bash and dash read differently"
		case (c == '<' || c == '>') && i+1 < len(s) && s[i+1] == '(':
			return nil, "a process substitution"
		case c == ' ' || c == '\t':
			end()
		case c == '#' && !inWord:
			for i < len(s) && s[i] != '\n' {
				i++
			}
			i--
		case c == '(' && inWord:
			return nil, "a word before ( (a function definition, or a pattern such as @(...))"
		case c == '(' && i+1 < len(s) && s[i+1] == '(':
			return nil, "arithmetic ((...)), in which an array subscript runs $(...)"
		case strings.IndexByte(";&|()<>\n", c) >= 0:
			// A redirection's file descriptor (2>, 1>&2) belongs to it;
			// one that opens the standard input (0>/dev/tcp/...) reads.
			fd0 := false
			if (c == '<' || c == '>') && inWord && !quoted && isDigits(b.String()) {
				fd0 = strings.TrimLeft(b.String(), "0") == ""
				b.Reset()
				inWord = false
			} else if (c == '<' || c == '>') && inWord && strings.HasPrefix(b.String(), "{") && strings.HasSuffix(b.String(), "}") {
				// bash's {NAME}>file sets NAME, an array element's
				// subscript included (which runs $(...) held in it).
				return nil, "a redirection that sets a variable ({name}>)"
			} else {
				end()
			}
			op := string(c)
			for _, two := range []string{"&&", "||", ">>", "<<", ">&", "<&", "&>", ">|", "<>", ";;"} {
				if strings.HasPrefix(s[i:], two) {
					op = two
					break
				}
			}
			if strings.HasPrefix(s[i:], "<<<") || strings.HasPrefix(s[i:], "&>>") || strings.HasPrefix(s[i:], "<<-") {
				op = s[i : i+3]
			}
			i += len(op) - 1
			switch op {
			case ">&":
				op = ">"
			case "<&":
				op = "<"
			case ";;":
				return nil, "a case statement"
			}
			if fd0 && strings.HasPrefix(op, ">") {
				op = "<" // the command's input, whatever the direction
			}
			out = append(out, word{op: op})
		case c == '$':
			var why string
			if i, why = dollar(i, false); why != "" {
				return nil, why
			}
			inWord = true
		default:
			// A '[' is a glob only with a ']' after it: [ and [[ are commands.
			// A '~' starting a word is a home directory ($HOME for ~).
			expanded = expanded || c == '*' || c == '?' || c == ']' && bracket || c == '~' && !inWord
			bracket = bracket || c == '['
			braces = braces || c == '{' || c == '}'
			b.WriteByte(c)
			inWord = true
		}
	}
	end()
	return out, ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isAssignment(w string) bool {
	name, _, ok := strings.Cut(unmarked(w), "=")
	name = strings.TrimSuffix(name, "+") // bash's NAME+=value appends
	if !ok || name == "" {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// builtinEvaluates says why a shell builtin may run code held in its
// arguments or in a variable, or "": bash evaluates an array subscript as
// arithmetic, and arithmetic runs a $(...) in a variable's value
// (x='a[$(rm -rf /x)]'; [[ x -eq 0 ]]); a variable it sets may be one a
// program runs code from (read PS4; set -x).
func builtinEvaluates(name string, args []string) string {
	subscript := func(a string) bool { return strings.HasPrefix(a, expands) || strings.Contains(a, "[") }
	switch name {
	case "export", "declare", "typeset", "readonly", "local":
		for _, a := range args {
			switch {
			case subscript(a):
				return name + " of an array element or of what the shell expands"
			case strings.HasPrefix(a, "-") && strings.ContainsAny(a, "inaA"):
				// Integers, name references and arrays: later assignments
				// are evaluated.
				return name + " " + a + ", whose variables evaluate what is assigned to them"
			}
			if why := codeInEnvironment(a); why != "" {
				return why
			}
		}
	case "read", "unset", "printf":
		names := args
		if name == "printf" {
			names = nil // only printf -v NAME sets a variable
			for i, a := range args {
				if a == "-v" && i+1 < len(args) {
					names = args[i+1 : i+2]
				} else if strings.HasPrefix(a, "-v") {
					names = []string{a[2:]}
				}
			}
		}
		for _, a := range names {
			if subscript(a) {
				return name + " of an array element or of what the shell expands"
			}
			if why := codeInEnvironment(a + "="); why != "" && !strings.HasPrefix(a, "-") {
				return name + " sets " + a + ", which makes programs run code"
			}
		}
	case "wait":
		if hasShort(args, "p") {
			return "wait -p, which sets a variable it names (an array element runs $(...))"
		}
	case "set":
		for i, a := range args {
			if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "H") ||
				a == "-o" && i+1 < len(args) && (args[i+1] == "history" || args[i+1] == "histexpand") {
				return "set turns on history expansion (!!), which runs commands a history holds"
			}
			if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "a") ||
				a == "-o" && i+1 < len(args) && args[i+1] == "allexport" {
				return "set -a exports every variable set after it, to the programs it runs"
			}
			if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "k") ||
				a == "-o" && i+1 < len(args) && args[i+1] == "keyword" {
				return "set -k puts the NAME=value words after a command into its environment"
			}
		}
	case "getopts":
		// getopts OPTSTRING NAME sets NAME.
		if len(args) > 1 {
			if a := args[1]; subscript(a) || codeInEnvironment(a+"=") != "" {
				return "getopts sets " + unmarked(a) + ", which is an array element or makes programs run code"
			}
		}
	case "[[", "[", "test":
		for _, a := range args {
			switch a {
			case "-v", "-eq", "-ne", "-lt", "-le", "-gt", "-ge":
				if a == "-v" || name == "[[" {
					return name + " " + a + ", which evaluates its operands as arithmetic"
				}
			}
		}
	}
	return ""
}
