package synth

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Write writes scenario s as a classic pcap (Ethernet, microsecond
// timestamps, in time order) to w and returns its labels.
func Write(w io.Writer, s Scenario, opt Options) (Labels, error) {
	o, err := opt.normalize()
	if err != nil {
		return Labels{}, fmt.Errorf("synth %s: %w", s, err)
	}
	j, err := newJob(s, o)
	if err != nil {
		return Labels{}, fmt.Errorf("synth: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	pw, err := newPcapWriter(bw, o.SnapLen)
	if err != nil {
		return Labels{}, fmt.Errorf("synth %s: %w", s, err)
	}
	n, last, err := j.sched.run(pw, o.Start.UnixNano(), j.limit)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return Labels{}, fmt.Errorf("synth %s: %w", s, err)
	}

	l := j.labels
	l.Packets = n
	for i := range l.Attacks {
		l.Attacks[i].Packets = j.counts[i]
	}
	if j.end == forever {
		// Open-ended (Bench): the capture ends just after its last packet.
		end := j.at(last).Truncate(time.Microsecond).Add(time.Microsecond)
		l.End = end
		for i := range l.Attacks {
			if l.Attacks[i].End.IsZero() {
				l.Attacks[i].End = end
			}
		}
	}
	return l, nil
}

// WriteFiles writes scenario s to <dir>/<s>.pcap and its labels, as indented
// JSON, to <dir>/<s>.labels.json, creating dir if needed.
func WriteFiles(dir string, s Scenario, opt Options) (pcapPath, labelsPath string, err error) {
	if !s.valid() {
		return "", "", fmt.Errorf("synth: unknown scenario %q", s)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("synth %s: %w", s, err)
	}
	pcapPath = filepath.Join(dir, string(s)+".pcap")
	labelsPath = filepath.Join(dir, string(s)+".labels.json")

	f, err := os.Create(pcapPath)
	if err != nil {
		return "", "", fmt.Errorf("synth %s: %w", s, err)
	}
	l, err := Write(f, s, opt)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("synth %s: close %s: %w", s, pcapPath, cerr)
	}
	if err != nil {
		return "", "", errors.Join(err, os.Remove(pcapPath))
	}

	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("synth %s: encode labels: %w", s, err)
	}
	if err := os.WriteFile(labelsPath, append(b, '\n'), 0o644); err != nil {
		return "", "", fmt.Errorf("synth %s: %w", s, err)
	}
	return pcapPath, labelsPath, nil
}
