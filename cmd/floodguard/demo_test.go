package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestDemoUsage: flags out of range or stray arguments are usage errors
// (exit status 2), reported before the demo needs root or hping3.
func TestDemoUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"demo", "-warm-up", "1s"}, "floodguard demo: usage: -warm-up 1s: want 3s..2m0s\n"},
		{[]string{"demo", "-ttl", "10m"}, "floodguard demo: usage: -ttl 10m0s: want 2s..5m0s\n"},
		{[]string{"demo", "now"}, "floodguard demo: usage: unexpected arguments [now]\n"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}, tc.args)
		if code != 2 || stderr.String() != tc.want || stdout.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2, stderr %q", tc.args, code, stderr.String(), stdout.String(), tc.want)
		}
	}
}
