package main

import (
	"github.com/floodguard/floodguard/daemon"
	"github.com/floodguard/floodguard/detector"
)

// loadConfig reads the detector's settings from floodguard's config file
// (the same file the daemon reads; "" means the defaults).
func loadConfig(path string) (detector.Config, error) {
	f, err := daemon.LoadFile(path)
	return f.Config, err
}
