// Command floodguard detects volumetric floods and drops them in the kernel.
//
// Subcommands:
//
//	floodguard replay [flags] FILE...   run captures through the detector
//	floodguard synth [flags] SCENARIO... write labelled synthetic captures
//	floodguard run --interface IFACE     protect an interface (the daemon)
//	floodguard status|bans|block|unblock operator commands (root, Unix socket)
//	floodguard top                      a live view of the running daemon (root)
//	floodguard detach                   remove what a stopped daemon left attached
//	floodguard config defaults|check    every key's default; check a file
//	floodguard demo                     the live demo in network namespaces (root)
//	floodguard completion bash|zsh      print a shell completion script
//	floodguard man                      print the man page (roff)
//	floodguard version                  print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// errUsage marks errors in how the command was called (exit status 2).
var errUsage = errors.New("usage")

// env is what a subcommand may touch of the process, so tests can run
// subcommands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// describe, when set, makes a command hand its flags to it and run
	// nothing (the completions and the man page are built from them).
	describe func(*flagSet)
}

type command struct {
	name, summary string
	run           func(e env, args []string) error
}

func commands() []command {
	return []command{
		{"replay", "run pcap/pcapng captures through the detector", runReplay},
		{"synth", "write labelled synthetic captures for tests and demos", runSynth},
		{"run", "protect a network interface (the daemon)", runDaemon},
		{"status", "show the running daemon's state", runStatus},
		{"bans", "list drop rules with their hit counters", runBans},
		{"top", "a live view of the daemon: rates, top sources, rules", runTop},
		{"block", "drop a CIDR for a while (never undone by the detector)", runBlock},
		{"unblock", "remove a drop rule", runUnblock},
		{"page", "send a test page through every configured sink (page --test)", runPage},
		{"detach", "remove the program and pins a stopped daemon left (root)", runDetach},
		{"config", "print the defaults of every config key, or check a config file", runConfig},
		{"demo", "the live demo in network namespaces (root; make demo)", runDemo},
		{"completion", "print a bash or zsh completion script", runCompletion},
		{"man", "print the man page (roff)", runMan},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// run dispatches to a subcommand and maps its error to an exit status:
// 0 success (help asked for included), 1 runtime failure, 2 usage error,
// or the status an *exitError carries.
func run(e env, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(e.stdout)
		return 0
	case "help":
		if len(args) == 1 {
			usage(e.stdout)
			return 0
		}
		return run(e, []string{args[1], "-h"})
	case "-version", "--version":
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(e, args[1:])
		var ee *exitError
		switch {
		case err == nil || errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(e.stderr, "floodguard %s: %s\n", c.name, errorText(c.name, err))
			return 2
		case errors.As(err, &ee):
			fmt.Fprintf(e.stderr, "floodguard %s: %s\n", c.name, errorText(c.name, err))
			return ee.code
		default:
			fmt.Fprintf(e.stderr, "floodguard %s: %s\n", c.name, errorText(c.name, err))
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "floodguard: unknown command %q\n", args[0])
	usage(e.stderr)
	return 2
}

// errorText is err's message without a leading repeat of the command's
// name: packages prefix their errors ("replay: ...", "synth NAME: ..."),
// and the line already starts with "floodguard NAME: ".
func errorText(name string, err error) string {
	msg := err.Error()
	for _, p := range []string{name + ": ", name + " "} {
		if strings.HasPrefix(msg, p) {
			return msg[len(p):]
		}
	}
	return msg
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: floodguard COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'floodguard help COMMAND' (or 'floodguard COMMAND -h') for a command's flags;")
	fmt.Fprintln(w, "flags may come before or after the arguments. 'floodguard --version' prints the version.")
}

// usageError wraps a message as a usage error.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

func runVersion(e env, args []string) error {
	fs := newFlagSet(e, "version", "", "Prints the version (git describe at build time); also floodguard --version.")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("unexpected arguments %v", pos)
	}
	_, err = fmt.Fprintln(e.stdout, "floodguard", version)
	return err
}
