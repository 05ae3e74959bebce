package main

import (
	"fmt"
	"os"

	"github.com/floodguard/floodguard/detector"
)

// loadConfig reads the YAML config at path over the defaults ("" means the
// defaults alone).
func loadConfig(path string) (detector.Config, error) {
	if path == "" {
		return detector.DefaultConfig(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return detector.Config{}, fmt.Errorf("read config: %w", err)
	}
	cfg, err := detector.ParseConfig(data)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
