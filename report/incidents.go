package report

import (
	"fmt"
	"time"

	"github.com/floodguard/floodguard/paging"
)

// TrackIncidents says the replay runs the paging tracker, so the report
// shows an incidents table even when it made no page.
func (r *Recorder) TrackIncidents() { r.paged = true }

// Page records a page the paging tracker made during the replay (the
// same tracker as the daemon's), for the incidents table.
func (r *Recorder) Page(p paging.Page) {
	r.paged = true
	for i := range r.incidents {
		if r.incidents[i].Key == p.Incident.Key {
			r.incidents[i].pages = append(r.incidents[i].pages, p)
			r.incidents[i].last = p.Incident
			return
		}
	}
	r.incidents = append(r.incidents, incident{Key: p.Incident.Key, pages: []paging.Page{p}, last: p.Incident})
}

// incident is one incident's pages.
type incident struct {
	Key   string
	pages []paging.Page
	last  paging.Incident
}

type incidentRow struct {
	Key, Opened, Resolved, Severity, Kind, Peak, Bans, Pages, Summary string
}

func (r *Recorder) incidentRows() []incidentRow {
	var rows []incidentRow
	for _, in := range r.incidents {
		inc := in.last
		resolved := "open at the end"
		if !inc.Resolved.IsZero() {
			resolved = inc.Resolved.UTC().Format(time.TimeOnly)
		}
		var pages string
		for i, p := range in.pages {
			if i > 0 {
				pages += ", "
			}
			pages += fmt.Sprintf("%s %s", p.Action, p.Time.UTC().Format(time.TimeOnly))
		}
		rows = append(rows, incidentRow{
			Key: inc.Key, Opened: inc.Opened.UTC().Format(time.TimeOnly), Resolved: resolved,
			Severity: string(inc.Severity), Kind: inc.Kind, Peak: paging.Rate(inc.PeakPPS),
			Bans:  fmt.Sprintf("%d sources, %d prefixes", inc.BannedSources, inc.BannedPrefixes),
			Pages: pages, Summary: in.pages[0].Incident.Summary,
		})
	}
	return rows
}
