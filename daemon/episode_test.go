package daemon

import "testing"

// TestEpisode: a condition is reported when it starts and when two reads
// in a row have been without it, once each.
func TestEpisode(t *testing.T) {
	var e episode
	for i, c := range []struct {
		now  bool
		want episodeChange
	}{
		{false, episodeSame},
		{true, episodeStarted},
		{true, episodeSame},
		{false, episodeSame},
		{true, episodeSame}, // back before it was over
		{false, episodeSame},
		{false, episodeEnded},
		{false, episodeSame},
		{true, episodeStarted},
	} {
		if got := e.step(c.now); got != c.want {
			t.Errorf("read %d (condition %v): %d, want %d", i, c.now, got, c.want)
		}
	}
}
