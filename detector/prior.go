package detector

import "math"

// prior estimates a high quantile of the per-key rates of well-behaved keys.
// A key with no history is judged as if this were its baseline, so a
// brand-new source is compared with what sources usually send.
//
// Rates go into a log-scale histogram (four buckets per doubling), which
// costs O(1) per sample and no allocation; once per tick the quantile is read
// off and smoothed with the detector's EWMA weight.
type prior struct {
	hist  [priorBuckets]uint32
	n     uint32
	value float64
	ready bool
}

const (
	priorBuckets = 160
	// priorMinSamples: fewer samples in a tick say too little to move the
	// estimate.
	priorMinSamples = 50
	// priorMinExp puts bucket 0 at 2^-8 pps.
	priorMinExp = -8
)

func priorBucket(rate float64) int {
	if rate <= 0 {
		return 0
	}
	// Read Frexp's result off the bits, as it is called for every source:
	// a normal rate is 1.m·2^(e-1023) = (0.5 + m/2)·2^(e-1022), so Frexp's
	// exponent is e-1022 and int((frac-0.5)·8) is the top two bits of m.
	bits := math.Float64bits(rate)
	e := int(bits >> 52 & 0x7ff)
	if e == 0 || e == 0x7ff { // subnormal, infinite or NaN
		return priorBucketFrexp(rate)
	}
	b := (e-1022-priorMinExp)*4 + int(bits>>50&3)
	return min(max(b, 0), priorBuckets-1)
}

// priorBucketFrexp is priorBucket for any positive rate or NaN.
func priorBucketFrexp(rate float64) int {
	frac, exp := math.Frexp(rate) // rate = frac·2^exp, frac in [0.5, 1)
	b := (exp-priorMinExp)*4 + int((frac-0.5)*8)
	return min(max(b, 0), priorBuckets-1)
}

// bucketTop returns the upper edge of a bucket's rate range.
func bucketTop(b int) float64 {
	exp := b/4 + priorMinExp
	frac := 0.5 + float64(b%4+1)/8
	return math.Ldexp(frac, exp)
}

func (p *prior) add(rate float64) {
	p.hist[priorBucket(rate)]++
	p.n++
}

// endTick reads this tick's quantile, folds it into the estimate and clears
// the histogram.
func (p *prior) endTick(q, alpha float64) {
	if p.n >= priorMinSamples {
		skip := uint32(float64(p.n) * (1 - q))
		var seen uint32
		b := priorBuckets - 1
		for ; b > 0; b-- {
			seen += p.hist[b]
			if seen > skip {
				break
			}
		}
		v := bucketTop(b)
		if !p.ready {
			p.value, p.ready = v, true
		} else {
			p.value += alpha * (v - p.value)
		}
	}
	p.hist = [priorBuckets]uint32{}
	p.n = 0
}

// baseline returns the prior as an EWMA state: mean and σ both equal to the
// quantile, a generous band for a key that has shown nothing yet.
func (p *prior) baseline() ewma {
	return ewma{mean: p.value, variance: p.value * p.value}
}
