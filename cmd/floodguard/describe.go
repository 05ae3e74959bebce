package main

import (
	"flag"
	"io"
	"strings"
)

// The command definitions as data, for the shell completions
// (completion.go) and the man page (man.go): every command of commands()
// run with env.describe set hands over its flag set and runs nothing.

// cmdDoc is one command as the completions and the man page see it.
type cmdDoc struct {
	name, summary string
	synopsis      string   // after "floodguard NAME "
	about         []string // the usage text's lines before the flags
	flags         []*flag.Flag
	// words are the fixed positional words the command takes (config
	// defaults|check), completed before files.
	words []string
}

// positionalWords are the fixed first arguments of the commands that take
// some; the others complete file names.
var positionalWords = map[string][]string{
	"config":     {"defaults", "check"},
	"completion": {"bash", "zsh"},
}

// describeCommands returns every command of commands() with its flags, in
// order, and help.
func describeCommands() []cmdDoc {
	var docs []cmdDoc
	for _, c := range commands() {
		d := cmdDoc{name: c.name, summary: c.summary, words: positionalWords[c.name]}
		e := env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
			describe: func(fs *flagSet) {
				d.synopsis, d.about = fs.synopsis, fs.about
				fs.VisitAll(func(f *flag.Flag) { d.flags = append(d.flags, f) })
			}}
		c.run(e, nil)
		docs = append(docs, d)
	}
	var names []string
	for _, d := range docs {
		names = append(names, d.name)
	}
	return append(docs, cmdDoc{name: "help", summary: "show the commands, or a command's flags", synopsis: "[COMMAND]", words: names})
}

// flagName is how the completions and the man page spell a flag: -o for
// one letter, --name otherwise (the flag package takes both).
func flagName(f *flag.Flag) string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// isBool reports whether f takes no value.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// takesFile reports whether f's value is a file or directory name, as its
// usage names it (`file`, `path`, `dir`).
func takesFile(f *flag.Flag) bool {
	name, _ := flag.UnquoteUsage(f)
	switch strings.ToLower(name) {
	case "file", "path", "dir", "directory":
		return true
	}
	return false
}

// hasDefault reports whether f's default is worth printing.
func hasDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s":
		return false
	}
	return true
}
