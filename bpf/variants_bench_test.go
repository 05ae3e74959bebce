package bpf

// Design variants: scripts/bench-xdp.sh builds patched copies of
// floodguard.c (one change each) into the directory named by
// FLOODGUARD_XDP_VARIANTS as floodguard-<variant>.o; the benchmark runs
// them side by side with the committed program. Without it those rows are
// left out.
const xdpVariantsEnv = "FLOODGUARD_XDP_VARIANTS"

// xdpVariants are the variants the script builds, in table order, and the
// paths each is run on (pass, pass-rules, drop-exact, drop-prefix).
var xdpVariants = []struct {
	name, label string
	paths       []string
}{
	{"control", "rebuilt here from floodguard.c, unpatched (the control for the rows below)", allPaths},
	{"nocache", "no rule cache: rule maps looked up on every frame", allPaths},
	{"ktime", "bpf_ktime_get_ns() instead of the coarse clock", allPaths},
	{"noclock", "no clock read at all (not a usable program: shows the clock's share)", []string{"pass"}},
	{"nosource", "parse + fg_stats only, no per-source entry (not usable: shows the per-source share)", []string{"pass"}},
	{"noprefixhit", "no prefix-rule hit counting (LPM lookup + 2 atomics per dropped frame)", []string{"drop-prefix"}},
	{"nodropcount", "no dropped packets/bytes counters (per source and global; not usable: shows their share)", []string{"drop-exact"}},
	{"nofeatures", "no feature counting (ports, lengths, destinations; not usable: shows their share)", allPaths},
	{"notrip", "no trip check (issue #17's cost: the tick's counts and the comparison with the trip level)", allPaths},
	{"lean", "per-source work alone: no features (#13), no trip check (#17), no clock (not usable: what a per-source design costs here)", []string{"pass"}},
	{"leanplain", "lean, and plain adds instead of atomic ones on the entry (as a per-CPU entry would)", []string{"pass"}},
	{"base", "the program before signature rules and features (BASE commit's floodguard.c, built as then)", allPaths},
	{"pre14", "the program before issue #14: per-CPU per-source entries without atomics, no admission (PRE14 commit's bpf/*.c, *.h)", allPaths},
	{"preslots", "the program before slots: the shared entry as the hash's value (PRESLOTS commit's bpf/*.c, *.h)", allPaths},
	{"preports", "the program before the port summer: port counters in a mapped region per CPU, indexed by CPU id (PREPORTS commit's bpf/*.c, *.h)", []string{"pass"}},
}

var allPaths = []string{"pass", "pass-rules", "drop-exact", "drop-prefix"}
