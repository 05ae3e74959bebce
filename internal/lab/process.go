package lab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a command started inside a namespace, its output (standard
// output and error together) followed line by line in Log.
type Process struct {
	Cmd *exec.Cmd
	Log *Log

	done chan struct{}
	err  error
}

// Start starts name inside the namespace under `ip netns exec`. The lab
// kills it on Close if it is still running.
func (n *Netns) Start(name string, args ...string) (*Process, error) {
	return n.StartCmd(n.Command(name, args...))
}

// StartCmd starts a command made by Command (its Stdout and Stderr must be
// unset: they feed Log).
func (n *Netns) StartCmd(cmd *exec.Cmd) (*Process, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("lab: command output is already redirected")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := spawn(cmd); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("lab: start %s: %w", strings.Join(cmd.Args, " "), err)
	}
	w.Close()
	p := &Process{Cmd: cmd, Log: NewLog(r), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		// Let the reader take in the last lines before anyone looks.
		p.Log.wait(5 * time.Second)
		close(p.done)
	}()
	n.lab.mu.Lock()
	n.lab.procs = append(n.lab.procs, p)
	n.lab.mu.Unlock()
	return p, nil
}

// spawner is a goroutine locked for good to one OS thread, which starts
// every command: Pdeathsig fires when the thread that started a process
// ends, not the process, and the Go runtime ends threads (those Netns.Do
// leaves in a namespace), so commands are started from a thread that lives
// as long as the process.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must not end
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	spawner.reqs <- r
	return <-r.err
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return os.ErrProcessDone
	}
	return p.Cmd.Process.Signal(sig)
}

// Done is closed once the process has ended and its output is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits at most timeout for the process to end (and its output to be
// read) and returns its exit error (os.ErrDeadlineExceeded if it is still
// running).
func (p *Process) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("lab: %s still running after %v: %w", p.Cmd.Path, timeout, os.ErrDeadlineExceeded)
	}
}

// Kill kills the process if it is running and waits for it (and for its
// output to be read).
func (p *Process) Kill() {
	if !p.Exited() {
		_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Stop asks the process to end with SIGTERM and kills it if it has not
// ended within grace: a daemon needs a moment to save its state and detach,
// but a stuck one must not hold up its caller.
func (p *Process) Stop(grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	if p.Wait(grace) != nil {
		p.Kill()
	}
}

// Entry is one line of a log: a JSON object (zerolog's), or plain text.
type Entry struct {
	// Line is the line as written.
	Line string
	// Fields are the JSON object's fields; nil for a plain line.
	Fields map[string]any
	// Read is when the line was read.
	Read time.Time
}

// Str returns a string field ("" if absent).
func (e Entry) Str(key string) string {
	s, _ := e.Fields[key].(string)
	return s
}

// Num returns a number field (0 if absent).
func (e Entry) Num(key string) float64 {
	v, _ := e.Fields[key].(float64)
	return v
}

// Bool returns a boolean field (false if absent).
func (e Entry) Bool(key string) bool {
	v, _ := e.Fields[key].(bool)
	return v
}

// Event is the "event" field.
func (e Entry) Event() string { return e.Str("event") }

// Time is the "time" field (RFC 3339), or when the line was read.
func (e Entry) Time() time.Time {
	if t, ok := e.TimeField("time"); ok {
		return t
	}
	return e.Read
}

// TimeField returns an RFC 3339 time field ("tick_end").
func (e Entry) TimeField(key string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, e.Str(key))
	return t, err == nil
}

// Log collects the lines of a stream as they arrive.
type Log struct {
	mu      sync.Mutex
	entries []Entry
	changed chan struct{} // closed and replaced on every line and at the end
	ended   bool
}

// ErrLogEnded is returned by Wait when the stream ended without a match.
var ErrLogEnded = errors.New("lab: log ended")

// NewLog reads r line by line until it ends.
func NewLog(r io.Reader) *Log {
	l := &Log{changed: make(chan struct{})}
	go l.read(r)
	return l
}

func (l *Log) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		e := Entry{Line: sc.Text(), Read: time.Now()}
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			e.Fields = m
		}
		l.mu.Lock()
		l.entries = append(l.entries, e)
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
	}
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
	l.mu.Lock()
	l.ended = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Len is the number of lines so far: a mark to Wait from.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Entries returns the lines so far.
func (l *Log) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Events returns the JSON lines whose "event" field is one of events.
func (l *Log) Events(events ...string) []Entry {
	var out []Entry
	for _, e := range l.Entries() {
		for _, ev := range events {
			if e.Event() == ev {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// String is the whole text so far.
func (l *Log) String() string {
	var b strings.Builder
	for _, e := range l.Entries() {
		b.WriteString(e.Line)
		b.WriteByte('\n')
	}
	return b.String()
}

// Wait returns the first line at index from or later that match accepts,
// and its index, waiting at most timeout for it to arrive.
func (l *Log) Wait(from int, timeout time.Duration, match func(Entry) bool) (Entry, int, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for i := from; ; {
		l.mu.Lock()
		for ; i < len(l.entries); i++ {
			if match(l.entries[i]) {
				e := l.entries[i]
				l.mu.Unlock()
				return e, i, nil
			}
		}
		ended, changed := l.ended, l.changed
		l.mu.Unlock()
		if ended {
			return Entry{}, -1, ErrLogEnded
		}
		select {
		case <-changed:
		case <-t.C:
			return Entry{}, -1, fmt.Errorf("lab: no matching log line within %v: %w", timeout, os.ErrDeadlineExceeded)
		}
	}
}

// WaitEvent waits for a JSON line with the given "event" field (and, if
// match is not nil, accepted by match).
func (l *Log) WaitEvent(from int, timeout time.Duration, event string, match func(Entry) bool) (Entry, int, error) {
	e, i, err := l.Wait(from, timeout, func(e Entry) bool {
		return e.Event() == event && (match == nil || match(e))
	})
	if err != nil {
		return e, i, fmt.Errorf("event %q: %w", event, err)
	}
	return e, i, nil
}

// wait waits at most timeout for the stream to end.
func (l *Log) wait(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		l.mu.Lock()
		ended, changed := l.ended, l.changed
		l.mu.Unlock()
		if ended {
			return
		}
		select {
		case <-changed:
		case <-t.C:
			return
		}
	}
}
