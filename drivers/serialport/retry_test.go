package serialport

import (
	"errors"
	"io"
	"syscall"
	"testing"

	"go.bug.st/serial"
)

// interrupted is a serial.Port whose writes and drains are interrupted by
// signals as often as asked, and whose writes take at most max bytes. The
// real kernel does this under Go's preemption signals, but not on demand.
type interrupted struct {
	serial.Port
	eintr   int // interruptions left
	max     int // bytes a write takes
	written []byte
	drained int
}

func (p *interrupted) Write(b []byte) (int, error) {
	if p.eintr > 0 {
		p.eintr--
		return -1, syscall.EINTR
	}
	n := min(len(b), p.max)
	p.written = append(p.written, b[:n]...)
	return n, nil
}

func (p *interrupted) Drain() error {
	if p.eintr > 0 {
		p.eintr--
		return syscall.EINTR
	}
	p.drained++
	return nil
}

func TestRetryingOnEINTR(t *testing.T) {
	frame := []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0xc4, 0x0b}
	tests := []struct {
		name       string
		eintr, max int
		wantErr    error
	}{
		{"plain", 0, 64, nil},
		{"interrupted writes and partial ones", 3, 3, nil},
		{"interrupted without end", maxEINTR + 1, 64, syscall.EINTR},
		{"a write that takes nothing", 0, 0, io.ErrShortWrite},
	}
	for _, tc := range tests {
		p := &interrupted{eintr: tc.eintr, max: tc.max}
		n, err := retrying{p}.Write(frame)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: write error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if err == nil && (n != len(frame) || string(p.written) != string(frame)) {
			t.Errorf("%s: wrote %d bytes % x, want % x", tc.name, n, p.written, frame)
		}
	}
	p := &interrupted{eintr: 5, max: 64}
	if err := (retrying{p}).Drain(); err != nil || p.drained != 1 {
		t.Fatalf("drain after 5 interruptions: %v, drained %d times", err, p.drained)
	}
	p = &interrupted{eintr: maxEINTR + 1, max: 64}
	if err := (retrying{p}).Drain(); !errors.Is(err, syscall.EINTR) {
		t.Fatalf("endless interruptions: %v, want EINTR", err)
	}
}
