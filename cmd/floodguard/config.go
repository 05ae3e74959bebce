package main

import (
	"github.com/floodguard/floodguard/detector"
	"github.com/floodguard/floodguard/internal/config"
)

// loadConfig reads the detector's settings from floodguard's config file
// (the same file the daemon reads; "" means the defaults).
func loadConfig(path string) (detector.Config, error) {
	f, err := config.Load(path)
	return f.Config, err
}
