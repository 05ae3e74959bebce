// A single-source UDP flood and how long its ban takes: to the daemon's
// ban line, and to the flood's last datagram reaching the server's socket,
// after which XDP drops it (the rule is in the kernel). The second needs
// nothing of the daemon's map layout, so it reads the same for any two
// builds compared.

package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// pollEvery is how often the sink's count from the flood's source is read:
// the resolution of the time to the kernel drop.
const pollEvery = 2 * time.Millisecond

// banTiming is one single-source flood.
type banTiming struct {
	src netip.Addr
	// sent and pps are the frames sent and the rate achieved.
	sent uint64
	pps  float64
	// logged and kernel are from the flood's first frame to the ban line,
	// and to the last datagram delivered; negative if it did not happen
	// while the flood lasted.
	logged, kernel time.Duration
	// target is what was banned ("" if nothing).
	target string
}

func (t banTiming) String() string {
	return fmt.Sprintf("%v: kernel %s, log %s (%.1fk pps)", t.src, ms(t.kernel), ms(t.logged), t.pps/1000)
}

// singleFlood floods the server's UDP sink from src at -single-rate until
// the daemon has banned it and the flood has stopped getting through, or
// for -single at most; the daemon's log is p's.
func (b *bench) singleFlood(ctx context.Context, p *lab.Process, src netip.Addr) (banTiming, error) {
	res := banTiming{src: src, logged: -1, kernel: -1}
	frames, err := lab.UDPFrames(lab.Packet{SrcMAC: b.single.MAC, DstMAC: b.serverMAC,
		Src: src, Dst: serverAddr, SrcPort: 40000, DstPort: sinkPort, Size: singleFrame})
	if err != nil {
		return res, fmt.Errorf("single-source frames: %w", err)
	}
	mark := p.Log.Len()
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The ban line, so that the flood can stop once it has stopped
	// getting through: a slow daemon may take many seconds.
	banned := make(chan struct{})
	go func(banned chan<- struct{}) {
		if _, _, err := p.Log.Wait(mark, b.opt.single+2*time.Second, banOf(src)); err == nil {
			close(banned)
		}
	}(banned)
	// Follow the sink's count from src: the last time it grew is when the
	// last datagram got through.
	var (
		wg   sync.WaitGroup
		last time.Time
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		// wait is the ban line's channel until it has come, then nil
		// (never ready).
		n, ref, isBanned, wait := b.sink.Received(src), time.Now(), false, (<-chan struct{})(banned)
		for {
			select {
			case <-done:
				return
			case <-wait:
				isBanned, wait = true, nil
			case <-time.After(pollEvery):
			}
			if m := b.sink.Received(src); m != n {
				n, last, ref = m, time.Now(), time.Now()
			}
			if isBanned && time.Since(ref) >= settle {
				cancel()
			}
		}
	}()
	st, ferr := b.single.Flood(fctx, lab.Flood{Frames: frames, Rate: b.opt.singleRate, Duration: b.opt.single})
	// Datagrams queued in the socket when the rule landed still arrive
	// for a moment: let them in before stopping the count.
	time.Sleep(settle)
	close(done)
	wg.Wait()
	if ferr != nil {
		return res, fmt.Errorf("single-source flood from %v: %w", src, ferr)
	}
	res.sent, res.pps = st.Sent, st.Rate()
	// Traffic still arriving in the flood's last moments was not stopped.
	if !last.IsZero() && last.Before(st.End.Add(-settle/2)) {
		res.kernel = last.Sub(st.Start)
	}
	match := banOf(src)
	for _, e := range p.Log.Entries()[mark:] {
		if match(e) {
			res.logged, res.target = e.Read.Sub(st.Start), e.Str("target")
			break
		}
	}
	return res, nil
}

// settle is how long a banned flood must have stopped getting through
// before it is ended, and how long its last datagrams get to arrive.
const settle = 200 * time.Millisecond

// banOf matches the daemon's ban line for src, or for a prefix holding it.
func banOf(src netip.Addr) func(lab.Entry) bool {
	return func(e lab.Entry) bool {
		if e.Event() != "ban" {
			return false
		}
		pfx, err := netip.ParsePrefix(e.Str("target"))
		return err == nil && pfx.Contains(src)
	}
}

func ms(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}
