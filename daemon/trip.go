package daemon

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floodguard/floodguard/bpf"
	"github.com/floodguard/floodguard/detector"
)

// Trips (issue #17, bpf/DESIGN.md "Trips"): the kernel reports a source
// whose counts in the tick reached its trip level; the live source hands
// the report to onTrip between ticks, on the detector's goroutine; the
// detector re-checks it against its state and, when the tick's end would
// ban the source, bans it at once (the rule goes to the kernel through the
// enforcer as any ban). After every tick the levels follow the detector's
// thresholds (syncTripLevels).

// tripQueue is how many trips wait for the detector's goroutine; more are
// counted and dropped (the tick's end judges those sources anyway).
const tripQueue = 256

// tripFeed reads the kernel's trips into a channel.
type tripFeed struct {
	rd      *bpf.TripReader
	ch      chan bpf.Trip
	dropped atomic.Uint64
	done    chan struct{}
	once    sync.Once
}

// startTrips starts reading the program's trips.
func (d *daemon) startTrips() (*tripFeed, error) {
	rd, err := d.x.NewTripReader()
	if err != nil {
		return nil, err
	}
	f := &tripFeed{rd: rd, ch: make(chan bpf.Trip, tripQueue), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for {
			tr, err := rd.Read()
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if err != nil {
				d.log.Error().Str("event", "trips_failed").Err(err).
					Msg("reading the kernel's trips failed: floods are now banned at the tick's end only")
				return
			}
			select {
			case f.ch <- tr:
			default:
				f.dropped.Add(1)
			}
		}
	}()
	return f, nil
}

// close stops the reader and waits for its goroutine; again, nothing.
func (f *tripFeed) close() {
	f.once.Do(func() {
		f.rd.Close()
		<-f.done
	})
}

// onTrip judges a tripped source now (capture.LiveOptions.OnTrip). A ban
// is logged at once (trip_ban), as its rule is in the kernel now; its
// attack_start and ban events, with the trip's time, come with the tick's
// other events at its end, and go to the pages and upstream from there.
func (d *daemon) onTrip(src *detector.Source, at time.Time) {
	banned := d.eng.Trip(src, at)
	since := time.Since(at)
	if !banned {
		d.log.Debug().Str("event", "trip").Str("source", src.Addr.String()).Uint64("packets", src.TotalPackets()).
			Str("since_trip", since.String()).Msg("source reached its trip level; not banned (the detector's state says otherwise)")
		return
	}
	d.log.Info().Str("event", "trip_ban").Str("target", src.Addr.Prefix().String()).Uint64("packets", src.TotalPackets()).
		Str("trip", at.UTC().Format(time.RFC3339Nano)).Float64("rule_written_ms", float64(since.Microseconds())/1000).
		Msg("source crossed its trip level: rule in the kernel now, events at the tick's end")
}

// syncTripLevels gives the kernel the detector's trip levels after a tick:
// the global one, and the sources' own levels that changed. With
// daemon.trips off the global level is zero (no trips) and the own levels
// are still mirrored, so that turning trips on by a reload finds them.
func (d *daemon) syncTripLevels() {
	gl := d.eng.GlobalTripLevel()
	if !d.file.Daemon.Trips {
		gl = detector.TripLevel{}
	}
	d.x.SetTripLevel(gl.Packets, gl.Bytes, bpf.DefaultTripCap)
	d.tripLevels = d.tripLevels[:0]
	d.eng.TripLevelChanges(func(a detector.Addr, l detector.TripLevel, remove bool) {
		d.tripLevels = append(d.tripLevels, bpf.SourceTripLevel{Addr: a, Packets: l.Packets, Bytes: l.Bytes, Remove: remove})
	})
	if err := d.x.UpdateTripLevels(d.tripLevels); err != nil {
		d.log.Warn().Str("event", "trip_levels_failed").Err(err).Msg("writing sources' trip levels to the kernel failed")
	}
}
