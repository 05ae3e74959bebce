// Package privtest is how floodguard's tests that need privileges (loading
// BPF, namespaces, veth) give way when they cannot run: they skip with the
// reason, except under FLOODGUARD_REQUIRE_PRIVILEGED=1 (set by .ci/run),
// where a skip would hide an untested kernel path, so they fail instead.
package privtest

import (
	"os"
	"testing"
)

// Env is the variable that turns privileged skips into failures.
const Env = "FLOODGUARD_REQUIRE_PRIVILEGED"

// SkipOrFail skips t with the reason, or fails it when Env is 1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(Env) == "1" {
		t.Fatalf(format+" ("+Env+"=1 forbids skipping)", args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips (or fails) t unless it runs as root; why says what the
// test needs root for.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root: %s", why)
	}
}
