package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func init() {
	// Tests must not read the host's packaged config.
	defaultConfigPath = "/nonexistent/floodguard.yaml"
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(env{stdin: strings.NewReader(""), stdout: &o, stderr: &e}, args)
	return code, o.String(), e.String()
}

// TestHelpToStdout: help asked for goes to standard output with exit 0, in
// every form and for every command.
func TestHelpToStdout(t *testing.T) {
	forms := [][]string{{"-h"}, {"--help"}, {"help"}}
	for _, c := range commands() {
		forms = append(forms, []string{c.name, "-h"}, []string{c.name, "--help"}, []string{"help", c.name})
	}
	for _, args := range forms {
		code, out, errOut := runCLI(args...)
		if code != 0 || !strings.Contains(out, "usage: floodguard") || errOut != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", args, code, out, errOut)
		}
	}
}

// TestUsageErrorToStderr: a usage error goes to standard error, exit 2.
func TestUsageErrorToStderr(t *testing.T) {
	for _, args := range [][]string{
		{}, {"nosuchcommand"}, {"replay", "-nosuchflag"}, {"status", "-o", "yaml"},
		{"top", "-o", "yaml"}, {"replay", "-o", "xml", "x.pcap"}, {"status", "extra"},
	} {
		code, out, errOut := runCLI(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "floodguard") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, stderr only", args, code, out, errOut)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := runCLI(args...)
		if code != 0 || !strings.HasPrefix(out, "floodguard ") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

// TestFlagsAfterArguments: `replay FILE -o jsonl` and the -format alias.
func TestFlagsAfterArguments(t *testing.T) {
	pcap := filepath.Join("..", "..", "testdata", "synth", "benign.pcap.gz")
	for _, args := range [][]string{
		{"replay", pcap, "-o", "jsonl"},
		{"replay", "-o", "jsonl", pcap},
		{"replay", "-format", "jsonl", pcap},
	} {
		code, out, errOut := runCLI(args...)
		if code != 0 || !strings.HasPrefix(out, "{") {
			t.Errorf("%v: exit %d, stderr %q, stdout starts %.40q; want JSON lines", args, code, errOut, out)
		}
	}
	// "--" ends the flags.
	code, _, errOut := runCLI("replay", "--", "-o")
	if code != 1 || !strings.Contains(errOut, "-o") {
		t.Errorf("replay -- -o: exit %d, %q; want a failure to read the file -o", code, errOut)
	}
}

// TestOperatorDefaultConfig: the operator commands read the packaged
// config when it exists, to find the daemon's socket.
func TestOperatorDefaultConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "floodguard.yaml")
	rt := filepath.Join(dir, "rt")
	if err := os.WriteFile(cfg, []byte("daemon:\n  runtime_dir: "+rt+"\n  pin_dir: "+filepath.Join(dir, "pins")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := defaultConfigPath
	defaultConfigPath = cfg
	defer func() { defaultConfigPath = old }()
	for _, args := range [][]string{{"status"}, {"top", "-n", "1"}, {"block", "198.19.7.0/24"}} {
		_, _, errOut := runCLI(args...)
		if !strings.Contains(errOut, rt) {
			t.Errorf("%v: stderr %q does not name the socket under %s", args, errOut, rt)
		}
	}
}

// TestOneErrorPrefix: an error line names the command once.
func TestOneErrorPrefix(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"replay", filepath.Join(dir, "missing.pcap")},
		{"synth", "-out", "/proc/nonexistent/x", "single-source"},
		{"synth", "-out", dir, "nosuchscenario"},
		{"status", "-socket", filepath.Join(dir, "s.sock")},
		{"page", "--test", "--config", filepath.Join(dir, "missing.yaml")},
	} {
		code, _, errOut := runCLI(args...)
		prefix := "floodguard " + args[0] + ": "
		if code == 0 || !strings.HasPrefix(errOut, prefix) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
			continue
		}
		rest := strings.TrimPrefix(errOut, prefix)
		if strings.HasPrefix(rest, args[0]+":") || strings.HasPrefix(rest, args[0]+" ") || strings.HasPrefix(rest, "floodguard") {
			t.Errorf("%v: doubled prefix: %q", args, errOut)
		}
	}
}
