package main

import (
	"fmt"

	"github.com/floodguard/floodguard/internal/config"
)

// runConfig is `floodguard config defaults` (every key with its default
// and a comment: deploy/floodguard.yaml) and `floodguard config check
// FILE` (exit 1 with the key and line of the first error).
func runConfig(e env, args []string) error {
	fs := newFlagSet(e, "config", "defaults | check FILE",
		"defaults    print every config key with its default and a comment",
		"check FILE  validate FILE: errors name the key and line (exit 1), else exit 0")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 1 && pos[0] == "defaults":
		_, err := e.stdout.Write(config.DefaultsYAML())
		return err
	case len(pos) == 2 && pos[0] == "check":
		if _, err := config.Load(pos[1]); err != nil {
			return err
		}
		_, err := fmt.Fprintf(e.stdout, "%s: ok\n", pos[1])
		return err
	}
	return usageError("want: floodguard config defaults | floodguard config check FILE")
}
