package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/floodguard/floodguard/internal/config"

	"golang.org/x/term"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/internal/ctxtime"
	"github.com/floodguard/floodguard/internal/humanize"
)

// topFlags are `floodguard top`'s flags.
type topFlags struct {
	socket   string
	count    int
	interval time.Duration
	output   string
	plain    bool
}

func parseTopFlags(e env, args []string) (topFlags, error) {
	var f topFlags
	var configPath string
	fs := newFlagSet(e, "top", "[flags]",
		"A live view of the running daemon, refreshed every tick; q or Ctrl-C quits.",
		"Not on a terminal (or with -plain, -n or -o json) it prints a plain view every tick.")
	fs.StringVar(&configPath, "config", "", "YAML config `file` (to find the runtime directory; default: "+config.DefaultPath+" when it exists)")
	fs.StringVar(&f.socket, "socket", "", "control socket `path` (default: RUNTIME_DIR/"+daemon.SocketName+")")
	fs.IntVar(&f.count, "n", 0, "plain output: print `COUNT` views, then exit (0: until interrupted)")
	fs.DurationVar(&f.interval, "interval", 0, "at most one view per `duration` (0: every tick)")
	fs.StringVar(&f.output, "o", "text", "plain output `format`: text, or json (one object a line)")
	fs.BoolVar(&f.plain, "plain", false, "plain periodic output even on a terminal")
	pos, err := fs.parse(args)
	if err != nil {
		return f, err
	}
	if len(pos) > 0 {
		return f, usageError("unexpected argument %q", pos[0])
	}
	if f.output != "text" && f.output != "json" {
		return f, usageError("-o %q: want text or json", f.output)
	}
	if f.count < 0 || f.interval < 0 {
		return f, usageError("-n and -interval must not be negative")
	}
	if f.socket == "" {
		paths, err := config.LoadPaths(operatorConfig(configPath))
		if err != nil {
			return f, err
		}
		f.socket = filepath.Join(paths.RuntimeDir, daemon.SocketName)
	}
	return f, nil
}

func runTop(e env, args []string) error {
	f, err := parseTopFlags(e, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	src := &topSource{client: unixClient(f.socket), socket: f.socket}
	defer src.client.CloseIdleConnections()
	if out, ok := e.stdout.(*os.File); ok && term.IsTerminal(int(out.Fd())) && !f.plain && f.count == 0 && f.output == "text" {
		return topTerminal(ctx, e, out, src, f)
	}
	return topPlain(ctx, e, src, f)
}

// topSource fetches one Top per tick: each request names the last tick
// seen, and the daemon answers when the next one is done.
type topSource struct {
	client *http.Client
	socket string
	ticks  uint64
	have   bool
}

func (s *topSource) next(ctx context.Context) (*daemon.Top, error) {
	path := "/v1/top"
	if s.have {
		path += "?after=" + strconv.FormatUint(s.ticks, 10)
	}
	var top daemon.Top
	if err := callWith(ctx, s.client, s.socket, "GET", path, nil, &top); err != nil {
		// Ask afresh next time: a restarted daemon counts ticks anew.
		s.have = false
		return nil, err
	}
	s.ticks, s.have = top.Status.Ticks, true
	return &top, nil
}

// retryEvery is how often top retries a daemon that does not answer.
const retryEvery = time.Second

// plainWidth is how wide the plain view is.
const plainWidth = 100

// topPlain prints a view (or a JSON object) every tick, no escape codes.
// Without -n it waits for a daemon that is down, saying so once.
func topPlain(ctx context.Context, e env, src *topSource, f topFlags) error {
	lastErr := ""
	for shown := 0; f.count == 0 || shown < f.count; {
		start := time.Now()
		top, err := src.next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if f.count > 0 || errors.Is(err, errNotRoot) {
				return err
			}
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				fmt.Fprintf(e.stderr, "floodguard top: %v; retrying every %v\n", err, retryEvery)
			}
			if ctxtime.Sleep(ctx, retryEvery) != nil {
				return nil
			}
			continue
		}
		lastErr = ""
		if f.output == "json" {
			b, err := json.Marshal(top)
			if err != nil {
				return fmt.Errorf("encode the view: %w", err)
			}
			if _, err := fmt.Fprintf(e.stdout, "%s\n", b); err != nil {
				return fmt.Errorf("write the view: %w", err)
			}
		} else {
			var b strings.Builder
			if shown > 0 {
				b.WriteString("\n")
			}
			for _, l := range renderTop(top, plainWidth, 0, "") {
				b.WriteString(l)
				b.WriteString("\n")
			}
			if _, err := io.WriteString(e.stdout, b.String()); err != nil {
				return fmt.Errorf("write the view: %w", err)
			}
		}
		shown++
		if f.interval > 0 && ctxtime.Sleep(ctx, time.Until(start.Add(f.interval))) != nil {
			return nil
		}
	}
	return nil
}

// Escape sequences of the full-screen view (VT100/xterm, which every
// terminal and terminal multiplexer in use understands).
const (
	escAltScreen = "\x1b[?1049h\x1b[?25l" // alternate screen, cursor hidden
	escMainScr   = "\x1b[?25h\x1b[?1049l" // cursor shown, main screen back
	escClearEOL  = "\x1b[K"
	escClearEOS  = "\x1b[J"
)

type topResult struct {
	top *daemon.Top
	err error
}

// topTerminal runs the full-screen view until q, Ctrl-C, a signal or an
// error, and always gives the terminal back as it found it.
func topTerminal(ctx context.Context, e env, out *os.File, src *topSource, f topFlags) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys := make(chan byte, 16)
	if in, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err != nil {
			return fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer term.Restore(int(in.Fd()), old)
		go readKeys(in, keys)
	}
	if _, err := io.WriteString(out, escAltScreen); err != nil {
		return fmt.Errorf("write to the terminal: %w", err)
	}
	defer io.WriteString(out, escMainScr)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)

	results := make(chan topResult, 1)
	go func() {
		for ctx.Err() == nil {
			start := time.Now()
			top, err := src.next(ctx)
			select {
			case results <- topResult{top, err}:
			case <-ctx.Done():
				return
			}
			wait := time.Until(start.Add(f.interval))
			if err != nil {
				wait = retryEvery
			}
			if ctxtime.Sleep(ctx, wait) != nil {
				return
			}
		}
	}()

	var top *daemon.Top
	note := "connecting to " + src.socket + " ..."
	var errSince time.Time
	for {
		w, h, err := term.GetSize(int(out.Fd()))
		if err != nil || w <= 0 || h <= 0 {
			w, h = 80, 24
		}
		if err := drawScreen(out, renderTop(top, w, h, note), h); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case k := <-keys:
			switch k {
			case 'q', 'Q', 3, 4: // q, Ctrl-C, Ctrl-D
				return nil
			}
		case <-winch:
		case r := <-results:
			switch {
			case errors.Is(r.err, errNotRoot):
				return r.err
			case r.err != nil:
				if errSince.IsZero() {
					errSince = time.Now()
				}
				note = fmt.Sprintf("%v; retrying (for %s)", r.err, humanize.Duration(time.Since(errSince)))
			default:
				top, note, errSince = r.top, "q: quit", time.Time{}
			}
		}
	}
}

// readKeys sends the bytes typed on the terminal (in raw mode) to keys.
func readKeys(in io.Reader, keys chan<- byte) {
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			select {
			case keys <- b:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

// drawScreen writes lines from the top left corner of a screen of height
// rows, each line addressed by its row (raw mode: a newline does not
// return the carriage), and clears what the last screen left.
func drawScreen(out io.Writer, lines []string, height int) error {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "\x1b[%d;1H%s%s", i+1, l, escClearEOL)
	}
	if len(lines) < height {
		fmt.Fprintf(&b, "\x1b[%d;1H%s", len(lines)+1, escClearEOS)
	}
	if _, err := io.WriteString(out, b.String()); err != nil {
		return fmt.Errorf("write to the terminal: %w", err)
	}
	return nil
}
