package synth

import "math"

// Times inside the generator are nanoseconds since the capture start: integer
// arithmetic keeps them exact and reproducible, and a Poisson gap of a few
// microseconds would be badly rounded in the microsecond pcap resolution.
const (
	second      = int64(1e9)
	millisecond = int64(1e6)
	forever     = int64(math.MaxInt64)
)

// source produces one stream of packets (a client, a resolver, an attacker).
type source interface {
	// emit builds into f the packet due at time t and returns the time its
	// next packet is due (>= t).
	emit(t int64, f *frame) (next int64)
}

// due is a source waiting in the schedule. Sources stop when their next
// packet would be at or after end.
type due struct {
	t, end int64
	id     int32
	src    source
}

// schedule merges all sources into one time-ordered packet stream. It is a
// binary min-heap on (t, id): ties go to the source added first, so the output
// order is a pure function of the sources, and removing the attack sources
// from a scenario leaves exactly the background stream.
type schedule struct {
	q  []due
	id int32
}

// add schedules src's first packet at t; nothing is added if t >= end.
func (s *schedule) add(t, end int64, src source) {
	s.id++
	if t >= end {
		return
	}
	s.q = append(s.q, due{t: t, end: end, id: s.id, src: src})
	s.up(len(s.q) - 1)
}

func (s *schedule) less(i, j int) bool {
	a, b := &s.q[i], &s.q[j]
	return a.t < b.t || a.t == b.t && a.id < b.id
}

func (s *schedule) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.q[i], s.q[p] = s.q[p], s.q[i]
		i = p
	}
}

func (s *schedule) down(i int) {
	n := len(s.q)
	for {
		c := 2*i + 1
		if c >= n {
			return
		}
		if c+1 < n && s.less(c+1, c) {
			c++
		}
		if !s.less(c, i) {
			return
		}
		s.q[i], s.q[c] = s.q[c], s.q[i]
		i = c
	}
}

// run writes packets in time order until every source has ended or limit
// packets (if limit > 0) are written. It returns the number written and the
// time of the last one.
func (s *schedule) run(pw *pcapWriter, startUnixNanos int64, limit uint64) (n uint64, last int64, err error) {
	var f frame
	for len(s.q) > 0 && (limit == 0 || n < limit) {
		d := &s.q[0]
		t := d.t
		next := d.src.emit(t, &f)
		if err := pw.write(startUnixNanos+t, f.bytes()); err != nil {
			return n, last, err
		}
		n++
		last = t
		if next < d.end {
			d.t = next
		} else {
			s.q[0] = s.q[len(s.q)-1]
			s.q = s.q[:len(s.q)-1]
		}
		s.down(0)
	}
	return n, last, nil
}
