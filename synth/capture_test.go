package synth

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Test helpers: read a written capture back with pcapgo and decode every
// frame with gopacket, an implementation independent of frames.go.

// record is one pcap record.
type record struct {
	ts   time.Time
	wire int
	data []byte // captured bytes
}

// same reports whether two records are identical (time, lengths, bytes).
func (r record) same(o record) bool {
	return r.ts.Equal(o.ts) && r.wire == o.wire && bytes.Equal(r.data, o.data)
}

// eachRecord reads a capture with pcapgo.NewReader, the reader the replay
// source uses, checks the file header and every record header, and calls fn
// for each record. r.data is only valid during the call (zero-copy reads keep
// the tests fast on millions of packets).
func eachRecord(t testing.TB, in io.Reader, fn func(r record)) (snap int) {
	t.Helper()
	br := bufio.NewReaderSize(in, 1<<20)
	if magic, err := br.Peek(4); err != nil || binary.LittleEndian.Uint32(magic) != 0xa1b2c3d4 {
		t.Fatalf("not a little-endian microsecond pcap: % x (%v)", magic, err)
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		t.Fatalf("pcapgo.NewReader: %v", err)
	}
	if lt := r.LinkType(); lt != layers.LinkTypeEthernet {
		t.Fatalf("link type %v, want Ethernet", lt)
	}
	snap = int(r.Snaplen())
	for n := 0; ; n++ {
		data, ci, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			return snap
		}
		if err != nil {
			t.Fatalf("record %d: %v", n, err)
		}
		if ci.CaptureLength != len(data) || len(data) > snap || ci.Length < len(data) {
			t.Fatalf("record %d: captured %d, length %d, snap %d", n, len(data), ci.Length, snap)
		}
		fn(record{ts: ci.Timestamp.UTC(), wire: ci.Length, data: data})
	}
}

// readPcap returns all records of a capture.
func readPcap(t testing.TB, b []byte) (snap int, recs []record) {
	t.Helper()
	snap = eachRecord(t, bytes.NewReader(b), func(r record) {
		r.data = bytes.Clone(r.data)
		recs = append(recs, r)
	})
	return snap, recs
}

// pkt is a decoded packet, as a detector would count it.
type pkt struct {
	t            time.Duration // since the capture start
	wire         int           // original length
	caplen       int           // captured length
	src, dst     netip.Addr
	class        string // syn, tcp, udp, icmp, other
	sport, dport uint16
	tcpFlags     uint8 // FIN 1, SYN 2, PSH 8, ACK 16
	ipLen        int   // IP total length (IPv6: payload length + 40)
}

// decoder decodes frames with a reusable gopacket DecodingLayerParser.
type decoder struct {
	eth    layers.Ethernet
	ip4    layers.IPv4
	ip6    layers.IPv6
	tcp    layers.TCP
	udp    layers.UDP
	icmp4  layers.ICMPv4
	icmp6  layers.ICMPv6
	pay    gopacket.Payload
	parser *gopacket.DecodingLayerParser
	found  []gopacket.LayerType
}

func newDecoder() *decoder {
	d := &decoder{}
	d.parser = gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet,
		&d.eth, &d.ip4, &d.ip6, &d.tcp, &d.udp, &d.icmp4, &d.icmp6, &d.pay)
	d.parser.IgnoreUnsupported = true // DNS, ICMP echo bodies: not needed
	return d
}

func (d *decoder) decode(t testing.TB, data []byte) pkt {
	t.Helper()
	d.found = d.found[:0]
	if err := d.parser.DecodeLayers(data, &d.found); err != nil {
		t.Fatalf("decode frame % x: %v", data[:min(len(data), 64)], err)
	}
	var p pkt
	p.class = "other"
	for _, lt := range d.found {
		switch lt {
		case layers.LayerTypeEthernet:
			if !bytes.Equal(d.eth.SrcMAC, []byte(routerMAC)) || !bytes.Equal(d.eth.DstMAC, []byte(victimMAC)) {
				t.Fatalf("MACs %v -> %v", d.eth.SrcMAC, d.eth.DstMAC)
			}
		case layers.LayerTypeIPv4:
			p.src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
			p.dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
			p.ipLen = int(d.ip4.Length)
		case layers.LayerTypeIPv6:
			p.src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			p.dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
			p.ipLen = int(d.ip6.Length) + ipv6HeaderLen
		case layers.LayerTypeTCP:
			p.class = "tcp"
			if d.tcp.SYN && !d.tcp.ACK {
				p.class = "syn"
			}
			p.sport, p.dport = uint16(d.tcp.SrcPort), uint16(d.tcp.DstPort)
			p.tcpFlags = tcpFlagsOf(&d.tcp)
		case layers.LayerTypeUDP:
			p.class = "udp"
			p.sport, p.dport = uint16(d.udp.SrcPort), uint16(d.udp.DstPort)
		case layers.LayerTypeICMPv4, layers.LayerTypeICMPv6:
			p.class = "icmp"
		}
	}
	if !p.src.IsValid() {
		t.Fatalf("frame without an IP layer: % x", data[:min(len(data), 64)])
	}
	return p
}

func tcpFlagsOf(t *layers.TCP) uint8 {
	var f uint8
	for _, b := range []struct {
		set bool
		f   uint8
	}{{t.FIN, flagFIN}, {t.SYN, flagSYN}, {t.PSH, flagPSH}, {t.ACK, flagACK}} {
		if b.set {
			f |= b.f
		}
	}
	return f
}

// capture is a written scenario, read back.
type capture struct {
	labels Labels
	snap   int
	pkts   []pkt
}

// eachWritten writes scenario s with opt and calls fn for each record as it is
// written: writer and reader run concurrently through a pipe, since
// buffering a capture of hundreds of megabytes costs more than generating
// it. It returns the snap length and the labels.
func eachWritten(t testing.TB, s Scenario, opt Options, fn func(r record)) (int, Labels) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pr.Close() // unblocks the writer if reading fails
	var (
		l    Labels
		werr error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		l, werr = Write(pw, s, opt)
		pw.CloseWithError(werr)
	}()
	snap := eachRecord(t, pr, fn)
	<-done
	if werr != nil {
		t.Fatalf("Write(%s): %v", s, werr)
	}
	return snap, l
}

// load writes scenario s with opt and decodes it.
func load(t testing.TB, s Scenario, opt Options) *capture {
	t.Helper()
	var (
		c  capture
		ts []time.Time
		d  = newDecoder()
	)
	c.snap, c.labels = eachWritten(t, s, opt, func(r record) {
		p := d.decode(t, r.data)
		p.wire, p.caplen = r.wire, len(r.data)
		c.pkts = append(c.pkts, p)
		ts = append(ts, r.ts)
	})
	for i := range c.pkts {
		c.pkts[i].t = ts[i].Sub(c.labels.Start)
	}
	return &c
}

// tick returns the 1 s tick of p (ticks start at the capture start).
func (p *pkt) tick() int { return int(p.t / time.Second) }
