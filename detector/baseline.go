package detector

// Baseline is the learnt normal rate of one aggregate class, for display
// (metrics, the top view, reports): its mean, its standard deviation, and
// the rate above which the class is judged over threshold now.
type Baseline struct {
	// Class is "all" or a class name (tcp_syn, tcp, udp, icmp, other).
	Class             string
	MeanPPS, SigmaPPS float64
	MeanBPS, SigmaBPS float64
	// ThresholdPPS and ThresholdBPS are where the class turns anomalous
	// (after the warm-up: max(mean + k·σ, ratio × mean, floor); during it:
	// the hard ceiling).
	ThresholdPPS, ThresholdBPS float64
	Anomalous                  bool
	// Learnt is false until the class has a sample.
	Learnt bool
}

// Baselines returns the aggregate baselines: "all" first, then each class.
func (e *Engine) Baselines() []Baseline {
	thr := &e.cfg.Aggregate
	out := make([]Baseline, 0, len(e.agg))
	for _, c := range append([]int{aggAll}, classIndexes()...) {
		a := &e.agg[c]
		b := Baseline{
			Class:   aggName(c),
			MeanPPS: a.pps.mean, SigmaPPS: a.pps.sigma(),
			MeanBPS: a.bps.mean, SigmaBPS: a.bps.sigma(),
			Anomalous: a.anomalous, Learnt: a.samples > 0,
		}
		if e.tick < e.warmEnd {
			b.ThresholdPPS, b.ThresholdBPS = thr.CeilingPPS, thr.CeilingBPS
		} else {
			b.ThresholdPPS = threshold(&a.pps, thr.K, thr.Ratio, thr.FloorPPS)
			b.ThresholdBPS = threshold(&a.bps, thr.K, thr.Ratio, thr.FloorBPS)
		}
		out = append(out, b)
	}
	return out
}

// AggregateBaseline returns the all-traffic baseline in packets per second.
func (e *Engine) AggregateBaseline() float64 { return e.agg[aggAll].pps.mean }

func classIndexes() []int {
	out := make([]int, 0, NumClasses)
	for c := range NumClasses {
		out = append(out, int(c))
	}
	return out
}
