package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds on a flood, so no test or demo can send without end.
const (
	MaxFloodRate     = 1e6
	MaxFloodDuration = 5 * time.Minute
	// maxBurst caps the frames written back to back: a veth with an XDP
	// program queues a few hundred frames towards its peer at most.
	maxBurst = 64
	// floodGrace is how long past its duration a flood that cannot keep
	// its rate may run before it stops short.
	floodGrace = time.Second
)

// Sender writes raw Ethernet frames on one interface of a namespace
// through a packet socket made in that namespace.
type Sender struct {
	// MAC is the interface's hardware address.
	MAC   net.HardwareAddr
	iface string

	mu     sync.Mutex
	fd     int
	to     unix.SockaddrLinklayer
	closed bool
}

// NewSender opens a packet socket on dev in the namespace. It receives
// nothing and bypasses the qdisc; the lab closes it on Close.
func (n *Netns) NewSender(dev string) (*Sender, error) {
	s := &Sender{iface: dev, fd: -1}
	err := n.Do(func() error {
		iface, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		// Protocol 0: the socket sends only, nothing is queued to it.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			unix.Close(fd)
			return fmt.Errorf("packet socket: qdisc bypass: %w", err)
		}
		s.fd, s.MAC = fd, iface.HardwareAddr
		s.to = unix.SockaddrLinklayer{Ifindex: iface.Index, Halen: 6}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lab: sender on %s in %s: %w", dev, n.full, err)
	}
	n.lab.track(s)
	return s, nil
}

// Close closes the socket.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}

// Send writes one frame.
func (s *Sender) Send(frame []byte) error {
	if err := unix.Sendto(s.fd, frame, 0, &s.to); err != nil {
		return fmt.Errorf("lab: send on %s: %w", s.iface, err)
	}
	return nil
}

// Flood is a bounded stream of frames at a target rate.
type Flood struct {
	Frames Frames
	// Rate is in frames per second (at most MaxFloodRate).
	Rate float64
	// Duration is how long the flood lasts (at most MaxFloodDuration);
	// it sends Rate × Duration frames in all.
	Duration time.Duration
}

// FloodStats is what a flood sent.
type FloodStats struct {
	// Start is when the first frame was sent, End when the last was.
	Start, End time.Time
	// Sent counts frames the kernel took; Dropped those it refused
	// (ENOBUFS: the interface's queue was full).
	Sent, Dropped uint64
}

// Rate is the achieved rate in frames per second.
func (f FloodStats) Rate() float64 {
	d := f.End.Sub(f.Start).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(f.Sent) / d
}

// Flood sends f.Rate × f.Duration frames, paced in bursts of at most a few
// dozen frames, until they are sent, ctx is done, or the duration plus a
// second has passed (a machine too slow for the rate sends fewer).
func (s *Sender) Flood(ctx context.Context, f Flood) (FloodStats, error) {
	var st FloodStats
	if f.Frames == nil {
		return st, errors.New("lab: flood without frames")
	}
	if !(f.Rate > 0 && f.Rate <= MaxFloodRate) {
		return st, fmt.Errorf("lab: flood rate %v outside (0, %v]", f.Rate, MaxFloodRate)
	}
	if f.Duration <= 0 || f.Duration > MaxFloodDuration {
		return st, fmt.Errorf("lab: flood duration %v outside (0, %v]", f.Duration, MaxFloodDuration)
	}
	total := uint64(math.Max(1, math.Round(f.Rate*f.Duration.Seconds())))
	st.Start = time.Now()
	stop := st.Start.Add(f.Duration + floodGrace)
	var i uint64
	for i < total && ctx.Err() == nil {
		now := time.Now()
		if now.After(stop) {
			break
		}
		due := min(total, uint64(f.Rate*now.Sub(st.Start).Seconds())+1)
		if i >= due {
			// Sleep until the next frame is due.
			next := st.Start.Add(time.Duration(float64(i) / f.Rate * float64(time.Second)))
			time.Sleep(max(next.Sub(now), 50*time.Microsecond))
			continue
		}
		for burst := 0; i < due && burst < maxBurst; burst++ {
			err := unix.Sendto(s.fd, f.Frames.Frame(i), 0, &s.to)
			i++
			switch {
			case err == nil:
				st.Sent++
			case errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.EAGAIN):
				st.Dropped++
			default:
				st.End = time.Now()
				return st, fmt.Errorf("lab: flood on %s: %w", s.iface, err)
			}
		}
		if i < due {
			// Behind schedule: yield between bursts all the same.
			time.Sleep(50 * time.Microsecond)
		}
	}
	st.End = time.Now()
	return st, nil
}
