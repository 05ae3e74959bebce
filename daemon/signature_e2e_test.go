package daemon_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/floodguard/floodguard/internal/lab"
)

// reflection mixes a reflection flood with the server's own resolver: the
// i-th frame is the resolver's every resolverEvery frames, else the next
// reflector's. Every frame comes from UDP port 53.
type reflection struct {
	reflectors    [][]byte
	resolver      []byte
	resolverEvery uint64
}

func (r *reflection) Frame(i uint64) []byte {
	if i%r.resolverEvery == 0 {
		return r.resolver
	}
	return r.reflectors[i%uint64(len(r.reflectors))]
}

const (
	resolverPort = 53
	reflectors   = 2000
)

var resolver4 = netip.MustParseAddr("198.18.0.53")

// reflectorAddr is the i-th reflector, one per /24 of 198.19.0.0/16 and
// beyond: no prefix explains them.
func reflectorAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 19, byte(i >> 8 & 0xff), byte(i)})
}

// TestE2ESignatureReflection: 2000 reflectors at ~10 pps each, all from
// UDP port 53, flood the server while its resolver keeps answering from
// the same port. A signature rule is in the kernel within two ticks; the
// resolver's packets still arrive (it was talking before the attack, so it
// is exempt) and the reflectors' do not.
func TestE2ESignatureReflection(t *testing.T) {
	e := newE2E(t, cfg{})
	d := e.start()
	dns := func(src netip.Addr) []byte {
		fr, err := lab.UDPFrames(lab.Packet{SrcMAC: e.snd.MAC, DstMAC: e.victimMAC, Src: src, Dst: victim4, SrcPort: resolverPort, DstPort: sinkPort, Size: 600})
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), fr.Frame(0)...)
	}
	mix := &reflection{resolver: dns(resolver4), resolverEvery: 1000}
	for i := range reflectors {
		mix.reflectors = append(mix.reflectors, dns(reflectorAddr(i)))
	}
	// The resolver answers through the warm-up and after it: an
	// established source of port 53 before the attack.
	resolverOnly := &reflection{resolver: mix.resolver, resolverEvery: 1}
	e.waitWarm(d)
	e.flood(resolverOnly, 20, 6*time.Second)
	mark := d.Log.Len()
	before := e.sink4.Settle(resolver4, 200*time.Millisecond, 2*time.Second)

	st := e.flood(mix, 20000, 5*time.Second)
	ban, _, err := d.Log.WaitEvent(mark, time.Until(st.Start.Add(2*tick+time.Second)), "ban",
		func(en lab.Entry) bool { return en.Str("scope") == "signature" })
	if err != nil {
		t.Fatalf("no signature rule for the reflection flood: %v", err)
	}
	if got, want := ban.Str("target"), "udp sport 53"; !strings.HasPrefix(got, want) {
		t.Errorf("signature rule %q, want %q...", got, want)
	}
	if after := installed(t, ban).Sub(st.Start); after > 2*tick {
		t.Errorf("signature rule in the kernel %v after the flood started, later than two ticks", after)
	} else {
		t.Logf("signature rule %q in the kernel %v after the flood started", ban.Str("target"), after.Round(time.Millisecond))
	}
	for _, b := range d.Log.Events("ban") {
		if b.Str("scope") != "signature" {
			t.Errorf("source or prefix ban beside the signature rule: %s", b.Line)
		}
	}
	// The resolver's frames during the flood all arrived.
	sent := (st.Sent + mix.resolverEvery - 1) / mix.resolverEvery
	got := e.sink4.Settle(resolver4, 300*time.Millisecond, 3*time.Second) - before
	if got < sent {
		t.Errorf("resolver: %d of its %d frames during the flood arrived", got, sent)
	}
	// The rule is in the kernel: a further burst of reflections reaches
	// nothing, the resolver's answers still do.
	rules := e.bans()
	found := false
	for _, r := range rules {
		found = found || r.Scope == "signature" && strings.HasPrefix(r.Target, "udp sport 53")
	}
	if !found {
		t.Fatalf("floodguard bans: %+v, want the signature rule", rules)
	}
	var reflBefore uint64
	for i := range reflectors {
		reflBefore += e.sink4.Received(reflectorAddr(i))
	}
	before = e.sink4.Received(resolver4)
	burst := e.flood(mix, 5000, time.Second)
	time.Sleep(500 * time.Millisecond)
	var reflAfter uint64
	for i := range reflectors {
		reflAfter += e.sink4.Received(reflectorAddr(i))
	}
	if n := reflAfter - reflBefore; n != 0 {
		t.Errorf("%d reflected frames of a %d-frame burst got through the rule", n, burst.Sent)
	}
	want := (burst.Sent + mix.resolverEvery - 1) / mix.resolverEvery
	if got := e.sink4.Settle(resolver4, 300*time.Millisecond, 3*time.Second) - before; got < want {
		t.Errorf("resolver during the burst: %d of %d frames arrived", got, want)
	}
}
