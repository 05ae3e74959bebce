package detector

import (
	"math"
	"math/rand/v2"
	"testing"
)

// priorBucket reads the bucket off the float's bits; it must agree with
// the Frexp form everywhere.
func TestPriorBucketMatchesFrexp(t *testing.T) {
	check := func(v float64) {
		t.Helper()
		want := 0
		if v > 0 || math.IsNaN(v) {
			want = priorBucketFrexp(v)
		}
		if got := priorBucket(v); got != want {
			t.Fatalf("priorBucket(%v) = %d, want %d", v, got, want)
		}
	}
	for _, v := range []float64{0, -1, math.Inf(1), math.Inf(-1), math.NaN(), math.SmallestNonzeroFloat64,
		math.MaxFloat64, 1, 0.5, 0.75, 1.0 / 256, 1.0 / 512, 3, 1e300, 2.2250738585072014e-308} {
		check(v)
		check(math.Nextafter(v, 0))
		check(math.Nextafter(v, math.Inf(1)))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		check(math.Float64frombits(r.Uint64()))
		check(r.ExpFloat64() * 1000)
		check(float64(r.IntN(100000)) / 0.1)
	}
}
