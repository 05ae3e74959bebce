package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/floodguard/floodguard/internal/config"
)

// runMan prints the man page, floodguard(1) in roff, built from the
// command definitions (describe.go); make install installs it.
func runMan(e env, args []string) error {
	fs := newFlagSet(e, "man", "",
		"Prints the floodguard(1) man page (roff): floodguard man | man -l -")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected arguments %v", pos)
	}
	return writeMan(e.stdout, describeCommands())
}

// roff escapes s for a roff text line: backslashes, hyphens (so they
// stay ASCII hyphen-minus), and a leading control character.
func roff(s string) string {
	s = strings.NewReplacer(`\`, `\e`, `-`, `\-`).Replace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func writeMan(w io.Writer, docs []cmdDoc) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH FLOODGUARD 1 \"\" \"floodguard %s\" \"User Commands\"\n", roff(version))
	b.WriteString(`.SH NAME
floodguard \- detect volumetric floods and drop them in the kernel (XDP)
.SH SYNOPSIS
.B floodguard
.I COMMAND
.RI [ flags ]
.RI [ args ]
.SH DESCRIPTION
floodguard watches the traffic of a network interface with an XDP program,
detects volumetric floods (single sources, spoofed floods, reflection) and
drops them in the kernel.
.B floodguard run
is the daemon (the floodguard systemd unit runs it); the operator commands
talk to it over its control socket.
Flags may come before or after the arguments; \fB\-\-\fR ends the flags.
Each flag takes one dash or two.
.SH COMMANDS
`)
	for _, d := range docs {
		fmt.Fprintf(&b, ".SS \"floodguard %s %s\"\n", roff(d.name), strings.ReplaceAll(roff(d.synopsis), `"`, `""`))
		fmt.Fprintf(&b, "%s.\n", roff(strings.ToUpper(d.summary[:1])+d.summary[1:]))
		for _, l := range d.about {
			if strings.TrimSpace(l) == "" {
				continue
			}
			if strings.HasPrefix(l, " ") {
				fmt.Fprintf(&b, ".br\n\\ \\ %s\n", roff(strings.TrimSpace(l)))
				continue
			}
			fmt.Fprintf(&b, ".br\n%s\n", roff(l))
		}
		for _, f := range d.flags {
			name, usage := flag.UnquoteUsage(f)
			b.WriteString(".TP\n")
			if isBool(f) {
				fmt.Fprintf(&b, ".B %s\n", roff(flagName(f)))
			} else {
				fmt.Fprintf(&b, ".BI \"%s \" %s\n", roff(flagName(f)), roff(name))
			}
			if hasDefault(f) {
				usage += " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(&b, "%s\n", roff(usage))
		}
	}
	fmt.Fprintf(&b, `.SH FILES
.TP
.I %s
The configuration (every key with its default:
.BR "floodguard config defaults" ).
.TP
.I /lib/systemd/system/floodguard.service
The systemd unit.
.SH EXIT STATUS
0 on success (help asked for included), 1 on a runtime failure, 2 on a usage error.
.SH SEE ALSO
.BR systemctl (1),
.BR bpftool (8)
`, roff(config.DefaultPath))
	_, err := io.WriteString(w, b.String())
	return err
}
