package main

import (
	"errors"
	"testing"

	"github.com/floodguard/floodguard/internal/lab"
	"github.com/floodguard/floodguard/internal/privtest"
)

// vethLab makes a lab of two namespaces joined by a veth pair ("va" in
// peer, "vb" in victim), removed with the test. check fails the test on an
// error, or skips it (fails under FLOODGUARD_REQUIRE_PRIVILEGED=1) when
// the lab needs privileges it lacks.
func vethLab(t *testing.T) (l *lab.Lab, victim, peer *lab.Netns, check func(error)) {
	t.Helper()
	l, err := lab.New()
	if errors.Is(err, lab.ErrNotPermitted) {
		privtest.SkipOrFail(t, "needs root: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("clean up the lab: %v", err)
		}
	})
	check = func(err error) {
		t.Helper()
		if errors.Is(err, lab.ErrNotPermitted) {
			privtest.SkipOrFail(t, "needs root: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	victim, err = l.AddNetns("victim")
	check(err)
	peer, err = l.AddNetns("peer")
	check(err)
	check(l.Veth(peer, "va", victim, "vb"))
	return l, victim, peer, check
}
