// Command floodguard detects volumetric floods and drops them in the kernel.
//
// Subcommands:
//
//	floodguard replay [flags] FILE...   run captures through the detector
//	floodguard synth [flags] SCENARIO... write labelled synthetic captures
//	floodguard run --interface IFACE     protect an interface (the daemon)
//	floodguard status|bans|block|unblock operator commands (root, Unix socket)
//	floodguard top                      a live view of the running daemon (root)
//	floodguard demo                     the live demo in network namespaces (root)
//	floodguard version                  print the version
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
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
		{"demo", "the live demo in network namespaces (root; make demo)", runDemo},
		{"version", "print the version", func(e env, _ []string) error {
			_, err := fmt.Fprintln(e.stdout, "floodguard", version)
			return err
		}},
	}
}

func main() {
	os.Exit(run(env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:]))
}

// run dispatches to a subcommand and maps its error to an exit status:
// 0 success, 1 runtime failure, 2 usage error.
func run(e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(e, args[1:])
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(e.stderr, "floodguard %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(e.stderr, "floodguard %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(e.stderr, "floodguard: unknown command %q\n", args[0])
	usage(e.stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: floodguard COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'floodguard COMMAND -h' for a command's flags.")
}

// usageError wraps a message as a usage error.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}
