package detector

import (
	"math"
	"testing"
)

func TestDecayIdleMatchesZeroUpdates(t *testing.T) {
	for _, n := range []uint32{1, 2, 5, 63, 64, 200} {
		alpha := alphaFor(30)
		dt := newDecayTable(alpha)
		a := ewma{mean: 120, variance: 900}
		b := a
		for range n {
			a.update(0, alpha)
		}
		b.decayIdle(dt.pow(n))
		if !close(a.mean, b.mean) || !close(a.variance, b.variance) {
			t.Errorf("n=%d: iterative %+v, closed form %+v", n, a, b)
		}
	}
}

func TestAlphaHalfLife(t *testing.T) {
	// After one half-life of samples at 0, a mean of 1 has halved.
	alpha := alphaFor(10)
	e := ewma{mean: 1}
	for range 10 {
		e.update(0, alpha)
	}
	if !close(e.mean, 0.5) {
		t.Fatalf("mean after one half-life = %v, want 0.5", e.mean)
	}
}

func TestEWMAConvergesToMeanAndVariance(t *testing.T) {
	// A square wave between 90 and 110 has mean 100 and variance 100.
	alpha := alphaFor(50)
	e := ewma{mean: 100}
	for i := range 5000 {
		x := 90.0
		if i%2 == 0 {
			x = 110
		}
		e.update(x, alpha)
	}
	if math.Abs(e.mean-100) > 1 || math.Abs(e.variance-100) > 5 {
		t.Fatalf("mean %v variance %v, want about 100 and 100", e.mean, e.variance)
	}
}

func TestThreshold(t *testing.T) {
	e := ewma{mean: 100, variance: 400} // σ = 20
	for _, tc := range []struct {
		k, ratio, floor, want float64
	}{
		{k: 4, ratio: 1, floor: 0, want: 180},
		{k: 4, ratio: 3, floor: 0, want: 300},
		{k: 4, ratio: 3, floor: 1000, want: 1000},
	} {
		if got := threshold(&e, tc.k, tc.ratio, tc.floor); !close(got, tc.want) {
			t.Errorf("threshold(k=%v ratio=%v floor=%v) = %v, want %v", tc.k, tc.ratio, tc.floor, got, tc.want)
		}
	}
}

func TestPriorQuantile(t *testing.T) {
	var p prior
	// 990 sources at 2 pps and 10 at 400 pps: the 0.99 quantile sits
	// between, the 0.995 quantile at the heavy clients.
	for range 990 {
		p.add(2)
	}
	for range 10 {
		p.add(400)
	}
	p.endTick(0.995, 0.1)
	if p.value < 300 || p.value > 520 {
		t.Fatalf("0.995 quantile = %v, want about 400", p.value)
	}
	var q prior
	for range 990 {
		q.add(2)
	}
	for range 10 {
		q.add(400)
	}
	q.endTick(0.98, 0.1)
	if q.value < 1.5 || q.value > 2.6 {
		t.Fatalf("0.98 quantile = %v, want about 2", q.value)
	}
}

func TestPriorBucketMonotonic(t *testing.T) {
	prev := -1
	for r := 0.001; r < 1e9; r *= 1.07 {
		b := priorBucket(r)
		if b < prev {
			t.Fatalf("bucket(%v) = %d after %d", r, b, prev)
		}
		if top := bucketTop(b); b > 0 && b < priorBuckets-1 && top < r {
			t.Fatalf("bucketTop(%d) = %v below rate %v", b, top, r)
		}
		prev = b
	}
}

func close(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }
