// Package ctxtime waits in a way a cancelled context cuts short.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits for d, or until ctx is done, whichever comes first; it
// returns ctx.Err() in the second case and nil in the first.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait runs f, a wait bounded by its own timeout, and returns its error,
// or ctx.Err() as soon as ctx is done: a Ctrl-C need not wait out f's
// timeout. f goes on in the background until that timeout ends it.
func Wait(ctx context.Context, f func() error) error {
	c := make(chan error, 1)
	go func() { c <- f() }()
	select {
	case err := <-c:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
