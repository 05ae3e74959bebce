package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/floodguard/floodguard/internal/config"

	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/humanize"
	"github.com/floodguard/floodguard/upstream"
)

// ctlFlags are the flags every operator command takes.
type ctlFlags struct {
	config string
	socket string
	output string
	ttl    time.Duration
	// ttlSet: --ttl was given; permanent: --permanent was.
	ttlSet    bool
	permanent bool
	args      []string
	paths     config.Paths
}

func parseCtlFlags(e env, name, usage string, withTTL bool, args []string, extra ...func(*flag.FlagSet)) (ctlFlags, error) {
	var f ctlFlags
	fs := newFlagSet(e, name, "[flags] "+usage)
	fs.StringVar(&f.config, "config", "", "YAML config `file` (to find the runtime and pin directories; default: "+config.DefaultPath+" when it exists)")
	fs.StringVar(&f.socket, "socket", "", "control socket `path` (default: RUNTIME_DIR/"+daemon.SocketName+")")
	fs.StringVar(&f.output, "o", "table", "output `format`: table or json")
	if withTTL {
		fs.DurationVar(&f.ttl, "ttl", time.Hour, "how long the block lasts (at most the config's bans.max_ttl)")
		fs.BoolVar(&f.permanent, "permanent", false, "block until unblocked, past bans.max_ttl (not with --ttl)")
	}
	for _, x := range extra {
		x(fs.FlagSet)
	}
	// Flags may come before or after the CIDR (`block 198.19.7.0/24
	// --ttl 30m` reads naturally).
	pos, err := fs.parse(args)
	if err != nil {
		return f, err
	}
	f.args = pos
	fs.Visit(func(fl *flag.Flag) { f.ttlSet = f.ttlSet || fl.Name == "ttl" })
	f.config = operatorConfig(f.config)
	if f.output != "table" && f.output != "json" {
		return f, usageError("-o %q: want table or json", f.output)
	}
	paths, err := config.LoadPaths(f.config)
	if err != nil {
		return f, err
	}
	f.paths = paths
	if f.socket == "" {
		f.socket = filepath.Join(paths.RuntimeDir, daemon.SocketName)
	}
	return f, nil
}

// errDaemonDown means nothing answers on the control socket.
var errDaemonDown = errors.New("the daemon is not running")

// errNotRoot means the control socket refused a user other than root.
var errNotRoot = errors.New("operator commands need root")

// call sends one request to the daemon and decodes the JSON answer into out.
func call(socket, method, path string, body, out any) error {
	return callWith(context.Background(), unixClient(socket), socket, method, path, body, out)
}

// unixClient is an HTTP client for the control socket; reuse it for many
// requests (its idle connection stays open).
func unixClient(socket string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}},
	}
}

// callWith is call with a client from unixClient, given up when ctx is done.
func callWith(ctx context.Context, client *http.Client, socket, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://floodguard"+path, rd)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, os.ErrPermission):
		return fmt.Errorf("%s: permission denied: %w", socket, errNotRoot)
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (nothing answers on %s)", errDaemonDown, socket)
	case err != nil:
		return fmt.Errorf("talk to floodguard on %s: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return fmt.Errorf("the daemon refused: %s", e.Error)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func runStatus(e env, args []string) error {
	f, err := parseCtlFlags(e, "status", "", false, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(f.args) > 0 {
		return usageError("unexpected arguments %v", f.args)
	}
	var s daemon.Status
	if err := call(f.socket, "GET", "/v1/status", nil, &s); errors.Is(err, errDaemonDown) {
		// Exit status 3, as `systemctl status` has for a unit not running.
		return &exitError{code: 3, err: err}
	} else if err != nil {
		return err
	}
	if f.output == "json" {
		return printJSON(e.stdout, s)
	}
	return printStatus(e.stdout, &s, time.Now())
}

// printStatus writes the human status: the daemon, then (with an upstream
// section) each BGP peer's session and the routes announced.
func printStatus(w io.Writer, s *daemon.Status, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "interface\t%s (%s XDP%s)\n", s.Interface, s.Mode, map[bool]string{true: ", adopted", false: ""}[s.Adopted])
	fmt.Fprintf(tw, "up\t%s (%d ticks)\n", now.Sub(s.Started).Round(time.Second), s.Ticks)
	fmt.Fprintf(tw, "traffic\t%s pps (baseline %s), dropping %s pps\n", humanize.SI(s.PPS), humanize.SI(s.BaselinePPS), humanize.SI(s.DroppedPPS))
	fmt.Fprintf(tw, "sources\t%d tracked\n", s.TrackedSources)
	fmt.Fprintf(tw, "bans\t%d active\n", s.ActiveBans)
	attacks := "none"
	if len(s.Attacks) > 0 {
		attacks = strings.Join(s.Attacks, ", ")
	}
	fmt.Fprintf(tw, "attacks\t%s\n", attacks)
	if s.DryRun {
		fmt.Fprintf(tw, "dry run\tbans are decided but not installed\n")
	}
	if s.Upstream != nil {
		printUpstream(tw, s.Upstream, now)
	}
	return tw.Flush()
}

func printUpstream(tw io.Writer, u *upstream.Status, now time.Time) {
	fmt.Fprintf(tw, "upstream\t%d announced, %d withdrawn, %d refused, %d errors\n",
		u.Announcements, u.Withdrawals, u.Refusals, u.Errors)
	if len(u.Peers) == 0 {
		fmt.Fprintf(tw, "bgp peer\tnone yet\n")
	}
	for _, p := range u.Peers {
		since := ""
		if !p.Since.IsZero() {
			since = fmt.Sprintf(" for %s", now.Sub(p.Since).Round(time.Second))
		}
		fmt.Fprintf(tw, "bgp peer\t%s AS%d: %s%s\n", p.Address, p.AS, p.State, since)
	}
	if len(u.Announced) == 0 {
		fmt.Fprintf(tw, "announced\tnone\n")
	}
	for _, a := range u.Announced {
		dry := ""
		if a.DryRun {
			dry = " (dry run: not sent)"
		}
		fmt.Fprintf(tw, "announced\t%s%s: %s\n", a.Route, dry, a.Reason)
	}
}

func runBans(e env, args []string) error {
	f, err := parseCtlFlags(e, "bans", "", false, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(f.args) > 0 {
		return usageError("unexpected arguments %v", f.args)
	}
	var bans []daemon.Ban
	err = call(f.socket, "GET", "/v1/bans", nil, &bans)
	source := "daemon"
	if errors.Is(err, errDaemonDown) {
		// The rules live in pinned maps: list them without the daemon.
		bans, err = daemon.KernelBans(f.paths.PinDir)
		source = "pinned maps (daemon not running)"
	}
	if err != nil {
		return err
	}
	if f.output == "json" {
		return printJSON(e.stdout, bans)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "TARGET\tORIGIN\tSCOPE\tTIME LEFT\tDROPPED PKTS\tDROPPED BYTES\n")
	for _, b := range bans {
		left := b.TimeLeft.Round(time.Second).String()
		switch {
		case b.TimeLeft <= 0:
			left = "expired"
		case b.TimeLeft > daemon.PermanentTTL-365*24*time.Hour:
			left = "permanent"
		}
		if b.DryRun {
			left = "dry run"
		}
		target := b.Target
		if b.RatePPS > 0 {
			target += fmt.Sprintf(" (limit %d pps)", b.RatePPS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", target, b.Origin, b.Scope, left, b.Packets, b.Bytes)
	}
	fmt.Fprintf(tw, "(%d rules, from the %s)\n", len(bans), source)
	return tw.Flush()
}

func runBlock(e env, args []string) error   { return runChange(e, "block", args) }
func runUnblock(e env, args []string) error { return runChange(e, "unblock", args) }

func runChange(e env, op string, args []string) error {
	var mf matchFlags
	usage := "[CIDR] [--proto P --sport N --dport N --len LO-HI --flags V/M --frag K --dst CIDR --rate PPS]"
	if op == "block" {
		usage += " [--ttl D | --permanent]"
	}
	f, err := parseCtlFlags(e, op, usage, op == "block", args, mf.register)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	m, isSig, err := mf.match()
	if err != nil {
		return usageError("%v", err)
	}
	if len(f.args) > 1 || (len(f.args) == 0 && !isSig) {
		return usageError("want one CIDR or address, or signature flags (--proto, --sport, --dport, --len, ...)")
	}
	var cidr detector.CIDR
	if len(f.args) == 1 {
		if cidr, err = detector.ParseCIDR(f.args[0]); err != nil {
			return usageError("%v", err)
		}
	}
	req := daemon.BlockRequest{}
	if cidr.IsValid() {
		req.CIDR = cidr.String()
	}
	if isSig {
		if cidr.IsValid() {
			m.Src = cidr.Prefix
		}
		if err := m.Validate(); err != nil {
			return usageError("%v", err)
		}
		req.Match, req.RatePPS = &m, mf.rate
	} else if mf.rate > 0 {
		return usageError("--rate needs a signature (--proto ...): a source ban drops everything")
	}
	switch {
	case op == "block" && f.permanent && f.ttlSet:
		return usageError("--permanent and --ttl: give one")
	case op == "block" && f.permanent:
		req.Permanent = true
	case op == "block":
		req.TTL = f.ttl.String()
	}
	var res map[string]string
	err = call(f.socket, "POST", "/v1/"+op, req, &res)
	if errors.Is(err, errDaemonDown) && op == "unblock" && !isSig {
		if err := daemon.UnblockPinned(f.paths.PinDir, cidr.Prefix); err != nil {
			return err
		}
		res = map[string]string{"result": "unblocked " + cidr.String() + " in the pinned maps (daemon not running)"}
	} else if errors.Is(err, errDaemonDown) {
		return fmt.Errorf("%w: start it to block (rules must go through the detector)", err)
	} else if err != nil {
		return err
	}
	if f.output == "json" {
		return printJSON(e.stdout, res)
	}
	_, err = fmt.Fprintln(e.stdout, res["result"])
	return err
}
