package lab

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/floodguard/floodguard/internal/humanize"
)

// trafgen (netsniff-ng) sends faster than the lab's Sender, one CPU busy in
// the kernel's packet ring instead of a system call per burst. The lab
// starts it inside a namespace from a packet config (TrafgenUDP writes one
// for a UDP flood; a caller may write its own, as long as its addresses are
// test addresses), and stops it with SIGINT, when it prints what it sent.

// TrafgenOptions is a trafgen run.
type TrafgenOptions struct {
	// Bin is the trafgen binary; Dev the interface it sends on; Config
	// the packet config's path.
	Bin, Dev, Config string
	// Rate is the rate in frames per second; 0: as fast as one CPU
	// sends.
	Rate float64
}

// Trafgen is a running trafgen.
type Trafgen struct {
	p *Process
	// Started is when the process was started: its first frame leaves
	// some milliseconds later (it sets up its packet ring first).
	Started time.Time
}

// StartTrafgen starts trafgen in the namespace, pinned by itself to one
// CPU, sending until Stop (or the lab's Close).
func (n *Netns) StartTrafgen(o TrafgenOptions) (*Trafgen, error) {
	if !(o.Rate >= 0 && o.Rate <= MaxFloodRate*10) {
		return nil, fmt.Errorf("lab: trafgen rate %v outside [0, %v]", o.Rate, MaxFloodRate*10)
	}
	args := []string{"-o", o.Dev, "-i", o.Config, "-P", "1", "-C"}
	if o.Rate > 0 {
		args = append(args, "-b", fmt.Sprintf("%.0fpps", o.Rate))
	}
	start := time.Now()
	p, err := n.Start(o.Bin, args...)
	if err != nil {
		return nil, fmt.Errorf("start trafgen: %w", err)
	}
	return &Trafgen{p: p, Started: start}, nil
}

// Stop ends trafgen and returns the frames it sent, by its own count.
func (t *Trafgen) Stop() (uint64, error) {
	// trafgen prints its totals on SIGINT. Its sending process is a child
	// of the one started: signal the process group (the lab gives each
	// command its own).
	_ = unix.Kill(-t.p.Cmd.Process.Pid, unix.SIGINT)
	if t.p.Wait(10*time.Second) != nil && !t.p.Exited() {
		t.p.Kill()
	}
	out := t.p.Log.String()
	sent, ok := ParseTrafgenSent(out)
	if !ok {
		return 0, fmt.Errorf("trafgen: no packet count in its output:\n%s", humanize.Tail(out, 10))
	}
	return sent, nil
}

var trafgenSent = regexp.MustCompile(`(?m)^\s*(\d+) packets outgoing`)

// ParseTrafgenSent reads the frame count trafgen prints when it ends.
func ParseTrafgenSent(out string) (uint64, bool) {
	m := trafgenSent.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	return n, err == nil
}

// TrafgenBytes writes bytes as a trafgen byte list: "0x02, 0x00, ...".
func TrafgenBytes(bs []byte) string {
	s := make([]string, len(bs))
	for i, v := range bs {
		s[i] = fmt.Sprintf("0x%02x", v)
	}
	return strings.Join(s, ", ")
}

// TrafgenUDP writes a trafgen config sending UDPFrames(p)'s datagram, the
// same frame every time, to path.
func TrafgenUDP(path string, p Packet) error {
	frames, err := UDPFrames(p)
	if err != nil {
		return err
	}
	frame := frames.Frame(0)
	if len(frame) == 0 {
		return errors.New("lab: empty UDP frame")
	}
	cfg := fmt.Sprintf("# lab: UDP from %v to %v port %d\n{\n  %s\n}\n", p.Src, p.Dst, p.DstPort, TrafgenBytes(frame))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("trafgen config: %w", err)
	}
	return nil
}
