package humanize

import (
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{SI(950), "950"},
		{SI(1234), "1.2k"},
		{SI(3.4e6), "3.4M"},
		{SI(5e9), "5.0G"},
		{Rate(1200, 3.4e6), "1.2k pps / 3.4Mbit/s"},
		{Group(0, ","), "0"},
		{Group(999, ","), "999"},
		{Group(1000, ","), "1,000"},
		{Group(251217, ","), "251,217"},
		{Group(1234567, ","), "1,234,567"},
		{Group(1234, "\u202f"), "1\u202f234"},
		{Group(1234567, "\u202f"), "1\u202f234\u202f567"},
		{Duration(0), "0s"},
		{Duration(-time.Second), "0s"},
		{Duration(150 * time.Millisecond), "150ms"},
		{Duration(4500 * time.Millisecond), "4.5s"},
		{Duration(150 * time.Second), "2m30s"},
		{Duration(2 * time.Minute), "2m"},
		{Duration(time.Hour + 5*time.Minute + 7*time.Second), "1h5m"},
		{Duration(2 * time.Hour), "2h"},
		{Tail("a\nb\nc\n", 2), "c\n"},
		{Tail("a\nb\nc", 2), "b\nc"},
		{Tail("a", 5), "a"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
