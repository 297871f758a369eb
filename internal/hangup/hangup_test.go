package hangup

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// Each SIGHUP to this process is delivered as a reload; after ctx ends
// nothing more is sent.
func TestReloads(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	reload, stop := Reloads(ctx)
	defer stop()
	for i := 0; i < 3; i++ {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case <-reload:
		case <-time.After(10 * time.Second):
			t.Fatalf("SIGHUP %d not delivered", i+1)
		}
	}
	cancel()
	syscall.Kill(syscall.Getpid(), syscall.SIGHUP)
	select {
	case <-reload:
		t.Fatal("a reload after the context ended")
	case <-time.After(200 * time.Millisecond):
	}
}
