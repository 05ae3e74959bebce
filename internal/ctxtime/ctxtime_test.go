package ctxtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context: %v, want context.Canceled", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on a cancelled context: %v, want context.Canceled", err)
	}
}

func TestWait(t *testing.T) {
	boom := errors.New("boom")
	if err := Wait(context.Background(), func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("Wait = %v, want f's error", err)
	}
	// A cancelled context cuts a long wait short.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	if err := Wait(ctx, func() error { <-release; return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait on a cancelled context = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait on a cancelled context took %v", d)
	}
}
