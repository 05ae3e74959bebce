package bpf

import (
	"fmt"
	"os"
	"testing"
)

// TestMain fails the run if the tests leak file descriptors (maps,
// programs, links, netlink sockets).
func TestMain(m *testing.M) {
	before := openFDs()
	code := m.Run()
	if after := openFDs(); code == 0 && after > before {
		fmt.Fprintf(os.Stderr, "leaked %d file descriptors\n", after-before)
		code = 1
	}
	os.Exit(code)
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
