package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/floodguard/floodguard/internal/config"
)

// flagSet is a command's flags with its usage text. Every command parses
// through it, so they share one convention: flags may come before or after
// the positional arguments ("--" ends the flags), help asked for (-h,
// --help) goes to standard output, and a bad flag prints the usage on
// standard error and is a usage error (exit status 2).
type flagSet struct {
	*flag.FlagSet
	e        env
	synopsis string   // after "usage: floodguard NAME "
	about    []string // lines between the synopsis and the flags
}

func newFlagSet(e env, name, synopsis string, about ...string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), e: e, synopsis: synopsis, about: about}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// usage writes the usage text to w.
func (fs *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "usage: floodguard %s %s\n", fs.Name(), fs.synopsis)
	if len(fs.about) > 0 {
		fmt.Fprintln(w)
		for _, l := range fs.about {
			fmt.Fprintln(w, l)
		}
	}
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses args and returns the positional arguments. It returns
// flag.ErrHelp after printing the usage when help was asked for (the
// command then exits 0), and a usage error for a bad flag.
func (fs *flagSet) parse(args []string) ([]string, error) {
	if fs.e.describe != nil {
		// Asked for the command's flags (completions, man page): hand
		// them over and run nothing.
		fs.e.describe(fs)
		return nil, flag.ErrHelp
	}
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.usage(fs.e.stdout)
			return nil, err
		}
		if err != nil {
			fs.usage(fs.e.stderr)
			return nil, usageError("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// defaultConfigPath is the config the operator commands read when it
// exists and --config is not given (a variable for tests).
var defaultConfigPath = config.DefaultPath

// operatorConfig is the config file an operator command reads: the one
// given, else the packaged one when it exists, else none (the defaults).
func operatorConfig(given string) string {
	if given != "" {
		return given
	}
	if _, err := os.Stat(defaultConfigPath); err == nil {
		return defaultConfigPath
	}
	return ""
}

// exitError carries an exit status other than 1 for a runtime failure.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
