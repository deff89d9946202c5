package execpolicy

import (
	"fmt"
	"strings"
)

// GNU sed runs commands from its script: the e command runs its argument
// (or the pattern space) and the s command's e flag runs what it
// substituted. sed '1e rm -rf /x' file would pass a rule that denies rm, so
// every script a sed command line compiles is read here the way GNU sed's
// compiler reads it, far enough to tell a command from a regular expression,
// a replacement, a label, a file name or text to insert. A script it cannot
// read that way is undecidable.

func isSed(name string) bool { return name == "sed" || name == "gsed" }

// sedRunsCommands says why sed with args may run a command, or "".
func sedRunsCommands(name string, args []string) string {
	// GNU sed takes options after operands unless POSIXLY_CORRECT is set in
	// the container's environment, which the rules cannot see: then the
	// first operand is the script even when an -e follows it. Both readings
	// must be harmless.
	for _, posixly := range []bool{false, true} {
		prog, why := readSedArgs(args, posixly)
		if why != "" {
			return name + ": " + why
		}
		// A word the shell expands may be an option or a script, unless it
		// can only be an input file.
		for i, a := range args {
			if strings.HasPrefix(a, expands) && (!prog.stopped || i < prog.optionsEnd || i == prog.scriptAt) {
				return name + " given an argument the shell expands ($var, a glob) where it may be an option or its script (give sed its script, then --, then files)"
			}
		}
		// sed compiles its scripts in this order, and --sandbox (which
		// refuses e, r and w) holds only for those compiled after it: the
		// ones before it are a prefix.
		var scripts []string
		for _, c := range prog.chunks {
			if c.sandboxed {
				break
			}
			if c.file {
				return name + " runs a script file"
			}
			scripts = append(scripts, c.script)
		}
		// Scripts are compiled one after the other, text to insert
		// continuing from one into the next as if they were lines.
		runs, _, bad := readSedScript(strings.Join(scripts, "\n"))
		switch {
		case runs != "":
			return name + "'s " + runs
		case bad != "":
			return name + ": a script it cannot read: " + bad
		}
	}
	return ""
}

// sedTakesOnlyFiles reports whether whatever is appended to sed's args (by
// xargs) can only be input files: the args hold a script, and sed stops
// reading options within them (at a -- that is not an option's value, or,
// with POSIXLY_CORRECT, at the first operand).
func sedTakesOnlyFiles(args []string) bool {
	for _, posixly := range []bool{false, true} {
		if prog, why := readSedArgs(args, posixly); why != "" || len(prog.chunks) == 0 || !prog.stopped {
			return false
		}
	}
	return true
}

// sedArgs is what sed makes of its arguments.
type sedArgs struct {
	// chunks are the scripts it compiles, in order.
	chunks []sedChunk
	// scriptAt is the index of the operand that is the script, or -1.
	scriptAt int
	// stopped: sed reads no options from optionsEnd on (after --, or
	// from the first operand with POSIXLY_CORRECT), nor from anything
	// appended to args.
	stopped    bool
	optionsEnd int
}

type sedChunk struct {
	script string
	// file: a script file (-f), whose script is not on the command line.
	file bool
	// sandboxed: compiled after --sandbox.
	sandboxed bool
}

// sedLongs are GNU sed's long options and whether each takes a value: 'r'
// required (--opt=V or --opt V), 'o' optional (--opt=V only), 0 none.
var sedLongs = map[string]byte{
	"binary": 0, "debug": 0, "expression": 'r', "file": 'r', "follow-symlinks": 0,
	"help": 0, "in-place": 'o', "line-length": 'r', "null-data": 0, "zero-terminated": 0,
	"posix": 0, "quiet": 0, "silent": 0, "regexp-extended": 0, "sandbox": 0,
	"separate": 0, "unbuffered": 0, "version": 0,
}

// sedLong is the long option name abbreviates (GNU takes a unique prefix).
func sedLong(name string) (string, bool) {
	if _, ok := sedLongs[name]; ok {
		return name, true
	}
	found := ""
	for l := range sedLongs {
		if strings.HasPrefix(l, name) {
			if found != "" {
				return "", false // ambiguous: sed refuses it
			}
			found = l
		}
	}
	return found, found != ""
}

// readSedArgs reads sed's arguments as GNU getopt does: the scripts are
// every -e and -f, or else the first operand. posixly stops reading options
// at the first operand, as sed does with POSIXLY_CORRECT set.
func readSedArgs(args []string, posixly bool) (sedArgs, string) {
	prog := sedArgs{scriptAt: -1, optionsEnd: len(args)}
	sandbox := false
	operand := -1
	add := func(opt byte, v string) {
		switch opt {
		case 'e':
			prog.chunks = append(prog.chunks, sedChunk{script: v, sandboxed: sandbox})
		case 'f':
			prog.chunks = append(prog.chunks, sedChunk{file: true, sandboxed: sandbox})
		}
	}
options:
	for i := 0; i < len(args); i++ {
		a := unmarked(args[i])
		switch {
		case a == "--":
			prog.stopped, prog.optionsEnd = true, i+1
			if i+1 < len(args) && operand < 0 {
				operand = i + 1
			}
			break options
		case a == "-" || !strings.HasPrefix(a, "-"):
			if operand < 0 {
				operand = i
			}
			if posixly {
				prog.stopped, prog.optionsEnd = true, i
				break options
			}
		case strings.HasPrefix(a, "--"):
			name, v, hasValue := strings.Cut(a[2:], "=")
			long, ok := sedLong(name)
			if !ok {
				return prog, "an option it does not know: " + a
			}
			switch kind := sedLongs[long]; {
			case kind == 0 && hasValue:
				return prog, "an option that takes no value given one: " + a
			case kind == 'r' && !hasValue:
				if i+1 == len(args) {
					return prog, "--" + long + " without its value"
				}
				i++
				v = args[i]
			}
			switch long {
			case "expression":
				add('e', v)
			case "file":
				add('f', v)
			case "sandbox":
				sandbox = true
			}
		default:
			for j := 1; j < len(a); j++ {
				switch c := a[j]; {
				case strings.IndexByte("bEnrsuz", c) >= 0:
				case c == 'i':
					j = len(a) // the rest of the word is the backup suffix: -ie is -i with suffix "e"
				case c == 'e' || c == 'f' || c == 'l':
					v := a[j+1:]
					if v == "" {
						if i+1 == len(args) {
							return prog, fmt.Sprintf("-%c without its value", c)
						}
						i++
						v = args[i]
					}
					j = len(a)
					add(c, v)
				default:
					return prog, fmt.Sprintf("an option it does not know: -%c", c)
				}
			}
		}
	}
	if len(prog.chunks) == 0 && operand >= 0 {
		prog.scriptAt = operand
		prog.chunks = append(prog.chunks, sedChunk{script: args[operand], sandboxed: sandbox})
	}
	return prog, ""
}

// readSedScript reads script as GNU sed compiles it. runs says why it would
// run a command; files, whether it reads or writes a file by name (r, R, w,
// W, s///w: what --sandbox refuses besides e); bad, why it cannot be read.
func readSedScript(script string) (runs string, files bool, bad string) {
	for i := 0; i < len(script); i++ {
		if script[i] >= 0x80 {
			// In a multibyte locale (Shift JIS, GBK) a byte after one of
			// these can be a backslash or a delimiter that is not one.
			return "", false, "a byte that is not ASCII, which a multibyte locale reads otherwise"
		}
	}
	p := &sedReader{s: script}
	for {
		c := p.next()
		for c == ';' || isSedSpace(c) {
			c = p.next()
		}
		if c == eof {
			return "", files, ""
		}
		if p.address(c) {
			if c = p.nonblank(); c == ',' {
				if !p.address(p.nonblank()) {
					return p.fail("an address range with no end")
				}
				c = p.nonblank()
			}
		}
		if p.bad != "" {
			return p.fail(p.bad)
		}
		if c == '!' {
			c = p.nonblank()
		}
		switch {
		case c == 'e':
			return "e command runs a command", files, ""
		case c == '#':
			p.toLineEnd()
			continue
		case c != eof && strings.IndexByte(":btTv", byte(c)) >= 0:
			p.label()
			continue
		case c == '{':
			continue
		case c == 'a' || c == 'i' || c == 'c':
			if !p.text() {
				return p.fail("a, i or c with no text")
			}
			continue
		case c == 'r' || c == 'R' || c == 'w' || c == 'W':
			files = true
			p.toLineEnd()
			continue
		case c == 's':
			d := p.next()
			if !p.delimited(d, true) || !p.delimited(d, false) {
				return p.fail("an s command that does not end")
			}
			for done := false; !done; {
				switch f := p.nonblank(); {
				case f == 'e':
					return "s///e runs what it substituted as a command", files, ""
				case f == 'w':
					files = true
					p.toLineEnd()
					done = true
				case f == 'g' || f == 'p' || f == 'i' || f == 'I' || f == 'm' || f == 'M' || isDigit(f):
				case f == '}' || f == '#':
					p.unread(f)
					done = true
				case f == eof || f == '\n' || f == ';' || f == '\r' && p.next() == '\n':
					done = true
				default:
					return p.fail(fmt.Sprintf("an s flag it does not know: %q", rune(f)))
				}
			}
			continue
		case c == 'y':
			d := p.next()
			if !p.delimited(d, false) || !p.delimited(d, false) {
				return p.fail("a y command that does not end")
			}
		case c == 'q' || c == 'Q' || c == 'l' || c == 'L':
			p.blanks()
			p.digits()
		case c == '}' || c != eof && strings.IndexByte("=dDFgGhHnNpPxz", byte(c)) >= 0:
		default:
			if c == eof {
				return p.fail("an address with no command")
			}
			return p.fail(fmt.Sprintf("a command it does not know: %q", rune(c)))
		}
		if !p.endOfCommand() {
			return p.fail(fmt.Sprintf("more after the %q command", rune(c)))
		}
	}
}

const eof = -1

// sedReader is a cursor over a sed script.
type sedReader struct {
	s   string
	i   int
	bad string
}

func (p *sedReader) fail(why string) (string, bool, string) {
	if p.bad != "" {
		why = p.bad // what made it fail, below what it was reading
	}
	return "", false, fmt.Sprintf("%s, at byte %d", why, p.i)
}

func (p *sedReader) next() int {
	if p.i == len(p.s) {
		return eof
	}
	p.i++
	return int(p.s[p.i-1])
}

func (p *sedReader) unread(c int) {
	if c != eof {
		p.i--
	}
}

func (p *sedReader) blanks() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sedReader) nonblank() int {
	p.blanks()
	return p.next()
}

func (p *sedReader) digits() {
	for p.i < len(p.s) && isDigit(int(p.s[p.i])) {
		p.i++
	}
}

func (p *sedReader) toLineEnd() {
	for c := p.next(); c != eof && c != '\n'; c = p.next() {
	}
}

func isDigit(c int) bool { return '0' <= c && c <= '9' }

func isSedSpace(c int) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// address reads an address that starts with c, or reports there is none.
func (p *sedReader) address(c int) bool {
	switch {
	case c == '/' || c == '\\':
		if c == '\\' {
			c = p.next() // \%regex%
		}
		if !p.delimited(c, true) {
			if p.bad == "" {
				p.bad = "an address regex that does not end"
			}
			return true
		}
		for {
			if f := p.nonblank(); f != 'I' && f != 'M' {
				p.unread(f)
				return true
			}
		}
	case isDigit(c):
		p.digits()
		if f := p.nonblank(); f == '~' {
			p.blanks()
			p.digits()
		} else {
			p.unread(f)
		}
		return true
	case c == '+' || c == '~':
		p.blanks()
		p.digits()
		return true
	case c == '$':
		return true
	}
	return false
}

// delimited reads up to and over the delimiter d: a regular expression
// (where a bracket expression may hold d) or a replacement. An unescaped
// newline, or the end of the script, leaves it unterminated.
func (p *sedReader) delimited(d int, regex bool) bool {
	if d == eof || d == '\n' {
		return false
	}
	for {
		switch c := p.next(); {
		case c == eof || c == '\n':
			return false
		case c == d:
			return true
		case c == '\\':
			switch p.next() {
			case eof:
				return false
			case 'c':
				// \cX: GNU sed 4.10 reads it as one character (so \c[ opens
				// no bracket and \c/ ends nothing), 4.9 and before do not.
				p.bad = `\c, which versions of sed read differently`
				return false
			}
		case c == '[' && regex:
			if !p.bracket() {
				return false
			}
		}
	}
}

// bracket reads a bracket expression after its '[', over its ']': neither a
// backslash nor the delimiter is special in it, and [:alpha:], [.x.] and
// [=x=] hold a ']' of their own.
func (p *sedReader) bracket() bool {
	c := p.next()
	if c == '^' {
		c = p.next()
	}
	if c == ']' {
		c = p.next()
	}
	// 0: in the list; 1: after '['; 2: inside [: :], [. .] or [= =]; 3:
	// after its closing ':', '.' or '='.
	state, open := 0, 0
	for ; ; c = p.next() {
		switch c {
		case eof, '\n':
			return false
		case '.', ':', '=':
			if state == 1 {
				state, open = 2, c
				continue
			}
			if state == 2 && c == open {
				state = 3
				continue
			}
		case '[':
			if state == 0 {
				state = 1
			}
			continue
		case ']':
			if state == 0 || state == 1 {
				return true
			}
			if state == 3 {
				state = 0
			}
		}
		state &^= 1
	}
}

// label reads the label of :, b, t, T or v (the version), which ends at a
// blank, ';', '}', '#' or the line's end: what follows is the next command.
func (p *sedReader) label() {
	p.blanks()
	for p.i < len(p.s) && strings.IndexByte("\n \t;}#", p.s[p.i]) < 0 {
		p.i++
	}
}

// text reads what a, i or c insert: a\ and the lines after it, or the rest
// of the line ("a hello"); a backslash escapes the next byte, a newline
// included, which continues the text.
func (p *sedReader) text() bool {
	c := p.nonblank()
	switch c {
	case eof:
		return false
	case '\\':
		p.next() // what follows the backslash is text, or the newline before it
	default:
		p.unread(c)
	}
	for c := p.next(); c != eof && c != '\n'; c = p.next() {
		if c == '\\' && p.next() == eof {
			break
		}
	}
	return true
}

// endOfCommand reads what may end a command: blanks, then ';', a newline or
// the end, or a '}' or '#' left for the next.
func (p *sedReader) endOfCommand() bool {
	switch c := p.nonblank(); c {
	case '}', '#':
		p.unread(c)
		return true
	case eof, '\n', ';':
		return true
	}
	return false
}
