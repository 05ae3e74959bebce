package bpf

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/floodguard/floodguard/detector"
)

// slotOf returns the slot fg_sources gives src, failing if it has none.
func slotOf(t *testing.T, x *XDP, src string) uint32 {
	t.Helper()
	var slot uint32
	a := addr(src)
	if err := x.sources.Lookup(&a, &slot); err != nil {
		t.Fatalf("slot of %s: %v", src, err)
	}
	v, err := x.slot(slot)
	if err != nil {
		t.Fatal(err)
	}
	if v.Addr != a || v.Live != 1 {
		t.Fatalf("slot %d of %s holds %v, live %d", slot, src, v.Addr, v.Live)
	}
	return slot
}

// TestSlots (BPF_PROG_TEST_RUN): sources take slots from the start of the
// array; a full table refuses new sources (counted, frames still in the
// totals); a deleted source's slot is reused only after two epochs, with
// the new source's counts alone.
func TestSlots(t *testing.T) {
	x := loadAdmitting(t, 1, 0, Options{MaxSources: 4})
	src := func(i int) string { return fmt.Sprintf("198.18.3.%d", i) }
	for i := range 4 {
		for range i + 1 {
			run(t, x, udp4Frame(src(i)))
		}
		if got := slotOf(t, x, src(i)); got != uint32(i) {
			t.Errorf("%s in slot %d, want %d", src(i), got, i)
		}
	}
	refused := func(what string, want uint64) {
		t.Helper()
		before := readStats(t, x).SourceInsertFailures
		run(t, x, udp4Frame(src(9)))
		if got := readStats(t, x).SourceInsertFailures - before; got != want {
			t.Errorf("%s: %d insert failures for a new source, want %d", what, got, want)
		}
	}
	refused("full", 1)

	taken, err := x.TakeSources([]detector.Addr{addr(src(1))}, nil)
	if err != nil || len(taken) != 1 || taken[0].Packets[detector.ClassUDP] != 2 {
		t.Fatalf("take %s: %+v, %v", src(1), taken, err)
	}
	if x.slotVals[1].Live != 0 {
		t.Error("a taken source's slot is still live")
	}
	refused("just freed", 1)
	for epoch := range 2 {
		if err := x.AdvanceEpoch(); err != nil {
			t.Fatal(err)
		}
		if epoch == 0 {
			refused("one epoch after the free", 1)
		}
	}
	refused("two epochs after the free", 0)
	if got := slotOf(t, x, src(9)); got != 1 {
		t.Errorf("the new source took slot %d, want the freed 1", got)
	}
	got := map[string]uint64{}
	for _, s := range readSources(t, x) {
		got[s.Addr.String()] = s.Packets[detector.ClassUDP]
	}
	want := map[string]uint64{src(0): 1, src(2): 3, src(3): 4, src(9): 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read %v, want %v", got, want)
	}
}

// TestTakeStockOfSlots: a load with pinned maps makes the free slots agree
// with fg_sources, whatever an earlier run left: slots freed but never
// pushed back are free again, a slot marked live without an entry is not
// read, and the entries keep their slots and counts.
func TestTakeStockOfSlots(t *testing.T) {
	x := loadAdmitting(t, 1, 0, Options{MaxSources: 8})
	src := func(i int) string { return fmt.Sprintf("198.18.4.%d", i) }
	for i := range 5 {
		run(t, x, udp4Frame(src(i)))
	}
	if _, err := x.TakeSources([]detector.Addr{addr(src(1)), addr(src(4))}, nil); err != nil {
		t.Fatal(err)
	}
	// What a crash leaves: the freed slots in a list of the dead process,
	// and (a corrupt map) a live flag without an entry.
	x.freed = [2][]uint32{}
	atomic.StoreUint32(&x.slotVals[3].Live, 1)
	run(t, x, udp4Frame(src(3))) // counts into slot 3, as before
	atomic.StoreUint32(&x.slotVals[1].Live, 1)
	atomic.StoreUint32(&x.slotVals[6].Live, 1)

	if err := x.takeStockOfSlots(); err != nil {
		t.Fatal(err)
	}
	if next := atomic.LoadUint32(&x.admit.SlotsNext); next != 4 {
		t.Errorf("slots next %d, want 4 (above the highest entry, slot 3)", next)
	}
	if x.slotVals[1].Live != 0 {
		t.Error("a live flag without an entry survived")
	}
	// Slot 6, above every entry, is not read; it is overwritten when
	// taken. The free slot below 4 (1) is reused first, then 4, 5, 6.
	for i, want := range []uint32{1, 4, 5, 6} {
		s := fmt.Sprintf("198.18.5.%d", i)
		run(t, x, udp4Frame(s))
		if got := slotOf(t, x, s); got != want {
			t.Errorf("new source %d in slot %d, want %d", i, got, want)
		}
	}
	got := map[string]uint64{}
	for _, s := range readSources(t, x) {
		got[s.Addr.String()] = s.Packets[detector.ClassUDP]
	}
	want := map[string]uint64{src(0): 1, src(2): 1, src(3): 2, "198.18.5.0": 1, "198.18.5.1": 1, "198.18.5.2": 1, "198.18.5.3": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read %v, want %v", got, want)
	}
}

// TestSlotsMappedOnDemand: the slots are mapped chunk by chunk as they come
// into use, not all at load (the kernel maps every page of a BPF array's
// mapping at once: all of it would be resident in the daemon).
func TestSlotsMappedOnDemand(t *testing.T) {
	x := loadAdmitting(t, 1, 0, Options{MaxSources: 4 * slotChunk})
	if got := x.slotsMapped.Load(); got != 0 {
		t.Errorf("%d slots mapped at load, want none", got)
	}
	run(t, x, udp4Frame("198.18.6.1"))
	if got := len(readSources(t, x)); got != 1 {
		t.Errorf("read %d sources, want 1", got)
	}
	if got := x.slotsMapped.Load(); got != slotChunk {
		t.Errorf("%d slots mapped for one source, want a chunk (%d)", got, slotChunk)
	}
	fillSources(t, x, slotChunk+10)
	if got := len(readSources(t, x)); got != slotChunk+11 {
		t.Errorf("read %d sources, want %d", got, slotChunk+11)
	}
	if got := x.slotsMapped.Load(); got != 2*slotChunk {
		t.Errorf("%d slots mapped for %d sources, want two chunks", got, slotChunk+11)
	}
}
