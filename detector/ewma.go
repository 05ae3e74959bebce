package detector

import "math"

// ewma is an exponentially weighted moving average of a rate together with an
// EWMA of its variance (West's incremental form), so a band of mean ± k·σ can
// be kept per key in two floats.
type ewma struct {
	mean, variance float64
}

// update folds one sample in with weight alpha.
func (e *ewma) update(x, alpha float64) {
	diff := x - e.mean
	incr := alpha * diff
	e.mean += incr
	e.variance = (1 - alpha) * (e.variance + diff*incr)
}

// decayIdle folds in n zero samples at once: a key absent from n ticks had
// rate 0 in each. With d = 1-alpha the closed form is
// mean' = d^n·mean and variance' = d^n·(variance + mean²·(1-d^n)),
// which equals n calls of update(0, alpha).
func (e *ewma) decayIdle(dn float64) {
	m := e.mean
	e.mean = dn * m
	e.variance = dn * (e.variance + m*m*(1-dn))
}

func (e *ewma) sigma() float64 { return math.Sqrt(e.variance) }

// alphaFor returns the EWMA weight giving the half-life in ticks.
func alphaFor(halfLifeTicks float64) float64 {
	return 1 - math.Exp2(-1/halfLifeTicks)
}

// decayTable caches d^n for small n so catching up an idle key costs no
// math.Pow in the common case.
type decayTable struct {
	d      float64
	powers [64]float64
}

func newDecayTable(alpha float64) decayTable {
	t := decayTable{d: 1 - alpha}
	p := 1.0
	for i := range t.powers {
		t.powers[i] = p
		p *= t.d
	}
	return t
}

func (t *decayTable) pow(n uint32) float64 {
	if n < uint32(len(t.powers)) {
		return t.powers[n]
	}
	return math.Pow(t.d, float64(n))
}

// threshold returns the level a rate must exceed to be over threshold: the
// largest of mean + k·σ, mean × ratio and the floor.
func threshold(e *ewma, k, ratio, floor float64) float64 {
	return max(e.mean+k*e.sigma(), e.mean*ratio, floor)
}
