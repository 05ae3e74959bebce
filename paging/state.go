package paging

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// trackerState is the open incident as saved across a daemon restart, so
// that an incident open when the daemon stops is updated and resolved by
// the next run under the same key, not left open at the receivers forever
// or paged twice.
type trackerState struct {
	Version        int                `json:"version"`
	Incident       Incident           `json:"incident"`
	Seq            int                `json:"seq"`
	Classes        []string           `json:"classes,omitempty"`
	Banned         bool               `json:"banned,omitempty"`
	Paged          bool               `json:"paged,omitempty"`
	QuietSince     time.Time          `json:"quiet_since,omitzero"`
	LastPage       time.Time          `json:"last_page,omitzero"`
	OverSince      time.Time          `json:"over_since,omitzero"`
	Pending        []string           `json:"pending,omitempty"`
	NotHolding     bool               `json:"not_holding,omitempty"`
	Top            map[string]float64 `json:"top,omitempty"`
	Sources        []string           `json:"sources,omitempty"`
	Prefixes       []string           `json:"prefixes,omitempty"`
	ReflectionPort int                `json:"reflection_port,omitempty"`
	Spoofed        bool               `json:"spoofed,omitempty"`
}

const trackerStateVersion = 1

// MarshalState returns the open incident's state, or nil when none is
// open.
func (tr *Tracker) MarshalState() ([]byte, error) {
	inc := tr.inc
	if inc == nil {
		return nil, nil
	}
	st := trackerState{
		Version: trackerStateVersion, Incident: inc.Incident, Seq: inc.seq,
		Classes: slices.Sorted(maps.Keys(inc.classes)), Banned: inc.banned, Paged: inc.paged,
		QuietSince: inc.quietSince, LastPage: inc.lastPage, OverSince: inc.overSince,
		Pending: inc.pending, NotHolding: inc.notHolding, Top: inc.top,
		Sources: slices.Sorted(maps.Keys(inc.kinds.sources)), Prefixes: slices.Sorted(maps.Keys(inc.kinds.prefixes)),
		ReflectionPort: inc.kinds.reflectionPort, Spoofed: inc.kinds.spoofed,
	}
	data, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("save incident: %w", err)
	}
	return data, nil
}

// RestoreState reopens the incident MarshalState saved. An incident of
// another host, or older than maxAge (the daemon was down a long time),
// is not restored.
func (tr *Tracker) RestoreState(data []byte, now time.Time, maxAge time.Duration) error {
	var st trackerState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("restore incident: %w", err)
	}
	if st.Version != trackerStateVersion {
		return fmt.Errorf("restore incident: version %d, want %d", st.Version, trackerStateVersion)
	}
	if st.Incident.Host != tr.host || st.Incident.Key == "" {
		return fmt.Errorf("restore incident: %q is not an incident of %s", st.Incident.Key, tr.host)
	}
	if now.Sub(st.LastPage) > maxAge {
		return fmt.Errorf("restore incident %s: last paged %s ago, more than %s", st.Incident.Key, now.Sub(st.LastPage).Round(time.Second), maxAge)
	}
	inc := &incidentState{
		Incident: st.Incident, seq: st.Seq, active: map[string]bool{}, classes: map[string]bool{},
		banned: st.Banned, paged: st.Paged, quietSince: st.QuietSince, lastPage: st.LastPage,
		overSince: st.OverSince, pending: st.Pending, notHolding: st.NotHolding, top: st.Top,
		kinds: kindNotes{sources: map[string]bool{}, prefixes: map[string]bool{}, reflectionPort: st.ReflectionPort, spoofed: st.Spoofed},
	}
	if inc.top == nil {
		inc.top = map[string]float64{}
	}
	for _, c := range st.Classes {
		inc.classes[c] = true
	}
	for _, s := range st.Sources {
		inc.kinds.sources[s] = true
	}
	for _, p := range st.Prefixes {
		inc.kinds.prefixes[p] = true
	}
	tr.inc = inc
	return nil
}
