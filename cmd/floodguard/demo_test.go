package main

import "testing"

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
