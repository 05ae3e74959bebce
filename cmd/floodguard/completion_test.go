package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionsAndMan: every command and each of its flags appear in the
// bash and zsh completions and in the man page, and the scripts parse.
func TestCompletionsAndMan(t *testing.T) {
	docs := describeCommands()
	if len(docs) != len(commands())+1 {
		t.Fatalf("described %d commands, want %d and help", len(docs), len(commands()))
	}
	for _, d := range docs {
		if d.name == "detach" && len(d.flags) == 0 {
			t.Fatal("describe handed over no flags for detach")
		}
	}
	out := map[string]string{}
	for _, args := range [][]string{{"completion", "bash"}, {"completion", "zsh"}, {"man"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || stderr != "" {
			t.Fatalf("floodguard %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
		out[args[len(args)-1]] = stdout
	}

	// block returns the text of the script's case branch for name.
	block := func(script, name string) string {
		i := strings.Index(script, "\n\t"+name+")\n")
		if i < 0 {
			return ""
		}
		rest := script[i+1:]
		if j := strings.Index(rest, "\t\t;;\n"); j >= 0 {
			return rest[:j]
		}
		return rest
	}
	top := out["bash"][strings.Index(out["bash"], `compgen -W "`)+len(`compgen -W "`):]
	top = " " + top[:strings.Index(top, `"`)] + " "
	for _, d := range docs {
		for _, sh := range []string{"bash", "zsh"} {
			b := block(out[sh], d.name)
			if b == "" {
				t.Errorf("%s completion: no branch for %s", sh, d.name)
				continue
			}
			for _, f := range d.flags {
				if !strings.Contains(b, flagName(f)+" ") && !strings.Contains(b, flagName(f)+"[") && !strings.Contains(b, flagName(f)+`"`) {
					t.Errorf("%s completion of %s lacks %s", sh, d.name, flagName(f))
				}
			}
		}
		if !strings.Contains(out["zsh"], "\t'"+d.name+":") {
			t.Errorf("zsh completion: %s not among the commands", d.name)
		}
		if !strings.Contains(top, " "+d.name+" ") {
			t.Errorf("bash completion: %s not among the commands", d.name)
		}
		if !strings.Contains(out["man"], `.SS "floodguard `+roff(d.name)+" ") {
			t.Errorf("man page: no section for %s", d.name)
			continue
		}
		sec := out["man"][strings.Index(out["man"], `.SS "floodguard `+roff(d.name)+" "):]
		if j := strings.Index(sec[1:], "\n.SS "); j >= 0 {
			sec = sec[:j+1]
		}
		for _, f := range d.flags {
			if !strings.Contains(sec, ".B "+roff(flagName(f))+"\n") && !strings.Contains(sec, `.BI "`+roff(flagName(f))+` "`) {
				t.Errorf("man page, %s: lacks %s", d.name, flagName(f))
			}
		}
	}

	// The scripts parse, in the shells that are installed.
	dir := t.TempDir()
	for sh, script := range map[string]string{"bash": out["bash"], "zsh": out["zsh"]} {
		if _, err := exec.LookPath(sh); err != nil {
			t.Logf("%s not installed: syntax not checked", sh)
			continue
		}
		p := filepath.Join(dir, sh)
		if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(sh, "-n", p).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v: %s", sh, err, out)
		}
	}
	// bash: completing a flag of a command.
	if _, err := exec.LookPath("bash"); err == nil {
		cmd := exec.Command("bash", "-c", `source "$1"; COMP_WORDS=(floodguard detach --co); COMP_CWORD=2; _floodguard; echo "${COMPREPLY[@]}"`,
			"bash", filepath.Join(dir, "bash"))
		if got, err := cmd.Output(); err != nil || strings.TrimSpace(string(got)) != "--config" {
			t.Errorf("bash completion of 'floodguard detach --co': %q, %v; want --config", got, err)
		}
	}
	// man renders it without warnings, when man is installed.
	if _, err := exec.LookPath("man"); err == nil {
		p := filepath.Join(dir, "floodguard.1")
		os.WriteFile(p, []byte(out["man"]), 0o644)
		cmd := exec.Command("man", "--warnings", "-l", p)
		cmd.Env = append(os.Environ(), "MANPAGER=cat", "MANWIDTH=80")
		got, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(got), "floodguard detach") || strings.Contains(string(got), "warning") {
			t.Errorf("man -l: %v\n%s", err, got)
		}
	}
}
