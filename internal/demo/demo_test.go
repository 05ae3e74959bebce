package demo

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestHpingSent(t *testing.T) {
	out := "HPING 198.18.0.1 (eth0 198.18.0.1): udp mode set, 28 headers + 0 data bytes\n" +
		"--- 198.18.0.1 hping statistic ---\n" +
		"251217 packets transmitted, 0 packets received, 100% packet loss\n" +
		"round-trip min/avg/max = 0.0/0.0/0.0 ms\n"
	if got := hpingSent(out); got != 251217 {
		t.Errorf("hpingSent = %d, want 251217", got)
	}
	if got := hpingSent("hping3: killed\n"); got != 0 {
		t.Errorf("hpingSent without statistics = %d, want 0", got)
	}
}

// TestOptions: the defaults are in range; each option out of its range is
// an ErrOptions naming it, and Run refuses it before it needs root or
// builds anything.
func TestOptions(t *testing.T) {
	if err := DefaultOptions().Check(); err != nil {
		t.Fatalf("DefaultOptions: %v", err)
	}
	for _, tc := range []struct {
		set  func(*Options)
		want string
	}{
		{func(o *Options) { o.WarmUp = time.Second }, "-warm-up 1s: want 3s..2m0s"},
		{func(o *Options) { o.TTL = 6 * time.Minute }, "-ttl 6m0s: want 2s..5m0s"},
		{func(o *Options) { o.Flood = 0 }, "-flood 0s: want 2s..2m0s"},
	} {
		o := DefaultOptions()
		tc.set(&o)
		err := o.Check()
		if !errors.Is(err, ErrOptions) || err.Error() != tc.want {
			t.Errorf("Check = %v, want ErrOptions %q", err, tc.want)
		}
		if err := Run(context.Background(), o, nil, nil); !errors.Is(err, ErrOptions) {
			t.Errorf("Run = %v, want ErrOptions", err)
		}
	}
}
