package paging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// execHook runs a program for every page: no shell, the Page as JSON on
// its standard input, and an environment of its own, not floodguard's
// (which may hold other sinks' secrets, given as env): only PATH
// (floodguard's, or execDefaultPath) and
//
//	FLOODGUARD_ACTION        trigger, update or resolve
//	FLOODGUARD_INCIDENT_KEY  the incident's key
//	FLOODGUARD_SEVERITY      info, warning, error or critical
//	FLOODGUARD_PAGE_ID       the page's ID (the same on a retry)
//
// It runs with floodguard's privileges (root, or the systemd unit's
// capabilities and sandbox).
// Exit status 0 is delivered; any other status, a failure to start, or
// running past the timeout is a failure the Dispatcher retries. The
// program runs in its own process group, and the whole group is killed
// at the timeout, so helpers it started do not outlive it.
type execHook struct {
	name    string
	argv    []string
	timeout time.Duration
}

// execDefaultPath is the hook's PATH when floodguard has none.
const execDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execStderrShown is how much of the program's stderr an error quotes.
const execStderrShown = 200

// execWaitDelay bounds the wait for the program's output pipes to close
// after the group was killed (a helper that left the group may hold them).
const execWaitDelay = 2 * time.Second

func newExec(cfg SinkConfig) (*execHook, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, fmt.Errorf("exec sink %q: command (program and arguments) not configured", cfg.Name)
	}
	if _, err := exec.LookPath(cfg.Command[0]); err != nil {
		return nil, fmt.Errorf("exec sink %q: %w", cfg.Name, err)
	}
	return &execHook{name: cfg.Name, argv: append([]string(nil), cfg.Command...), timeout: cfg.Timeout.D()}, nil
}

func (s *execHook) Name() string { return s.name }

// execCapped keeps the first max bytes written to it and discards the
// rest (without failing the writer).
type execCapped struct {
	buf bytes.Buffer
	max int
}

func (w *execCapped) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room > 0 {
		w.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (s *execHook) Send(ctx context.Context, p *Page) error {
	body, err := sinkJSON(p)
	if err != nil {
		return &PermanentError{Err: fmt.Errorf("exec %s: encode page: %w", s.name, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, s.argv[0], s.argv[1:]...)
	cmd.Stdin = bytes.NewReader(append(body, '\n'))
	stderr := &execCapped{max: execStderrShown}
	cmd.Stderr = stderr // stdout goes to /dev/null
	path := os.Getenv("PATH")
	if path == "" {
		path = execDefaultPath
	}
	cmd.Env = []string{
		"PATH=" + path,
		"FLOODGUARD_ACTION=" + string(p.Action),
		"FLOODGUARD_INCIDENT_KEY=" + p.Incident.Key,
		"FLOODGUARD_SEVERITY=" + string(p.Incident.Severity),
		"FLOODGUARD_PAGE_ID=" + p.ID,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The process group has the leader's pid (Setpgid with Pgid 0).
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = execWaitDelay

	err = cmd.Run()
	if err == nil {
		return nil
	}
	cause := err
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cause = fmt.Errorf("killed after the %s timeout: %w", s.timeout, ctx.Err())
		} else {
			cause = fmt.Errorf("killed: %w", ctx.Err())
		}
	}
	var tail string
	if msg := strings.TrimSpace(strings.ToValidUTF8(stderr.buf.String(), "?")); msg != "" {
		tail = ": stderr: " + msg
	}
	return fmt.Errorf("exec %s: %s: %w%s", s.name, s.argv[0], cause, tail)
}
