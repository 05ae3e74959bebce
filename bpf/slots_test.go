package bpf

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

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

// TestSlotsUnderConcurrency: two CPUs admit and count sources from a shared
// pool (so they race to insert the same ones) while user space takes
// sources, advances epochs and takes stock as a restarting daemon would.
// Afterwards every address holds a live slot of its own, every live slot
// belongs to an address, and every slot taken is held, free or waiting,
// once. With a table smaller than the pool, the table is full half the
// time.
func TestSlotsUnderConcurrency(t *testing.T) {
	for _, size := range []uint32{4096, 2048} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testSlotsUnderConcurrency(t, size) })
	}
}

func testSlotsUnderConcurrency(t *testing.T, size uint32) {
	x := loadAdmitting(t, 1, 0, Options{MaxSources: size})
	if x.ncpu < 2 || runtime.NumCPU() < 2 {
		skipOrFail(t, "needs 2 CPUs: %d possible, %d usable", x.ncpu, runtime.NumCPU())
	}
	const pool = 3000
	frames := make([][]byte, pool)
	for i := range frames {
		frames[i] = udp6Frame(fmt.Sprintf("2001:db8::%x", i+1))
	}
	deadline := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for cpu := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				errs <- err
				return
			}
			rng := rand.New(rand.NewPCG(uint64(cpu), 7))
			for i := 0; i < 400_000 && time.Now().Before(deadline); i++ {
				if _, err := x.Program().Run(&ebpf.RunOptions{Data: frames[rng.IntN(pool)]}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	rng := rand.New(rand.NewPCG(3, 9))
	keys := make([]detector.Addr, 0, 64)
	for i := 0; time.Now().Before(deadline); i++ {
		keys = keys[:0]
		for range 64 {
			keys = append(keys, addr(fmt.Sprintf("2001:db8::%x", rng.IntN(pool)+1)))
		}
		if _, err := x.TakeSources(keys, nil); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			if err := x.AdvanceEpoch(); err != nil {
				t.Fatal(err)
			}
		}
		if i%200 == 199 {
			if err := x.takeStockOfSlots(); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	owner := map[uint32]detector.Addr{}
	var key detector.Addr
	var slot uint32
	it := x.sources.Iterate()
	for it.Next(&key, &slot) {
		v, err := x.slot(slot)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := owner[slot]; dup {
			t.Errorf("slot %d held by %v and %v", slot, prev, key)
		}
		owner[slot] = key
		if v.Live != 1 || v.Addr != key {
			t.Errorf("%v's slot %d: live %d, address %v", key, slot, v.Live, v.Addr)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range x.slotsUsed() {
		if x.slotVals[i].Live == 1 && owner[i] == (detector.Addr{}) {
			t.Errorf("slot %d live (%v) without an address", i, x.slotVals[i].Addr)
		}
	}
	free := map[uint32]bool{}
	for {
		err := x.free.LookupAndDelete(nil, &slot)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if free[slot] {
			t.Errorf("slot %d free twice", slot)
		}
		if _, used := owner[slot]; used {
			t.Errorf("slot %d free and held by %v", slot, owner[slot])
		}
		free[slot] = true
	}
	pending := 0
	for _, list := range x.freed {
		for _, slot := range list {
			if _, used := owner[slot]; used || free[slot] {
				t.Errorf("slot %d waiting to be pushed back, and held by %v or on the stack (%v)", slot, owner[slot], free[slot])
			}
			pending++
		}
	}
	// Every slot ever taken is held, on the stack or waiting: none leaks.
	if n := len(owner) + len(free) + pending; n != int(x.slotsUsed()) {
		t.Errorf("%d sources + %d free + %d waiting = %d slots, want the %d taken", len(owner), len(free), pending, n, x.slotsUsed())
	}
	t.Logf("%d sources in slots below %d, %d free on the stack, %d waiting; %d frames not tracked (table full)",
		len(owner), x.slotsUsed(), len(free), pending, readStats(t, x).SourceInsertFailures)
}
