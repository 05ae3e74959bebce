package main

import (
	"context"
	"fmt"
	"time"

	"github.com/floodguard/floodguard/internal/config"

	"github.com/floodguard/floodguard/paging"
)

// runPage is `floodguard page --test`: a test incident, opened and then
// resolved, through every configured sink, one attempt each, reporting
// what each said. It checks routing keys, URLs and secrets before an
// attack does.
func runPage(e env, args []string) error {
	fs := newFlagSet(e, "page", "--test [--config FILE]")
	configPath := fs.String("config", config.DefaultPath, "YAML config `file` with the paging section")
	test := fs.Bool("test", false, "send a test incident (trigger, then resolve) through every sink")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if !*test || len(pos) > 0 {
		return usageError("want: floodguard page --test [--config FILE]")
	}
	file, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	cfgs := file.Paging.Sinks
	if len(cfgs) == 0 {
		return fmt.Errorf("%s: no paging.sinks configured", *configPath)
	}
	host := file.Paging.HostName()
	now := time.Now().UTC()
	inc := paging.Incident{
		Key: host + "/test-" + now.Format("20060102T150405Z"), Host: host, Opened: now,
		Severity: paging.SeverityInfo, Kind: "test", Protocols: []string{"udp"},
		Summary: "floodguard test page from " + host + ": no attack, please ignore (floodguard page --test)",
		Waves:   1, BansHolding: true,
	}
	trigger := paging.Page{ID: inc.Key + "#1", Action: paging.Trigger, Seq: 1, Time: now, Why: "test", Incident: inc}
	inc.Resolved = now.Add(time.Second)
	resolve := paging.Page{ID: inc.Key + "#2", Action: paging.Resolve, Seq: 2, Time: inc.Resolved, Why: "test", Incident: inc}

	failed := 0
	for i := range cfgs {
		cfgs[i].SinkDefaults()
		c := &cfgs[i]
		s, err := paging.NewSink(*c)
		if err == nil {
			err = sendOnce(s, c.Timeout.D(), &trigger)
		}
		if err == nil {
			err = sendOnce(s, c.Timeout.D(), &resolve)
		}
		if err != nil {
			failed++
			fmt.Fprintf(e.stdout, "%-16s %-12s FAILED: %v\n", c.Name, c.Type, err)
			continue
		}
		fmt.Fprintf(e.stdout, "%-16s %-12s ok: trigger and resolve accepted (incident %s)\n", c.Name, c.Type, inc.Key)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d paging sinks failed", failed, len(cfgs))
	}
	return nil
}

func sendOnce(s paging.Sink, timeout time.Duration, p *paging.Page) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.Send(ctx, p); err != nil {
		return fmt.Errorf("%s: %w", p.Action, err)
	}
	return nil
}
