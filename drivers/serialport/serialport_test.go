package serialport

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

func TestModeTiming(t *testing.T) {
	tests := []struct {
		m    Mode
		bits int
		char time.Duration
		s    string
	}{
		{Mode{Baud: 9600}, 10, 1041666 * time.Nanosecond, "9600 8N1"},
		{Mode{Baud: 9600, Parity: "even"}, 11, 1145833 * time.Nanosecond, "9600 8E1"},
		{Mode{Baud: 4800, StopBits: 2}, 11, 2291666 * time.Nanosecond, "4800 8N2"},
	}
	for _, tc := range tests {
		if tc.m.CharBits() != tc.bits || tc.m.CharTime() != tc.char || tc.m.String() != tc.s {
			t.Errorf("%+v: %d bits, %v, %q", tc.m, tc.m.CharBits(), tc.m.CharTime(), tc.m.String())
		}
	}
	for _, bad := range []Mode{{Baud: 9600, Parity: "mark"}, {Baud: 9600, StopBits: 3}, {Baud: 10}, {Baud: 9600, DataBits: 5}} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestPTYIsAPort opens a pseudo-terminal's slave with the real serial-port
// code and exchanges bytes, including ones a cooked terminal would mangle.
func TestPTYIsAPort(t *testing.T) {
	pty, err := OpenPTY()
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	port, err := Open(pty.Slave, Mode{Baud: 4800, Parity: "even"})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if baud, _ := pty.Baud(); baud != 4800 {
		t.Fatalf("the slave is configured for %d baud, want 4800", baud)
	}
	frame := []byte{0x01, 0x03, 0x0d, 0x0a, 0x11, 0x13, 0x7f, 0xff}
	if _, err := port.Write(frame); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(frame))
	pty.Master.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(pty.Master, got); err != nil || !bytes.Equal(got, frame) {
		t.Fatalf("master read % x, %v; want % x", got, err, frame)
	}
	if _, err := pty.Master.Write(frame); err != nil {
		t.Fatal(err)
	}
	port.SetReadTimeout(5 * time.Second)
	got = got[:0]
	buf := make([]byte, 16)
	for len(got) < len(frame) {
		n, err := port.Read(buf)
		if err != nil || n == 0 {
			t.Fatalf("port read: %d, %v", n, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, frame) {
		t.Fatalf("port read % x, want % x", got, frame)
	}
	// A read with nothing to read times out with 0, nil.
	port.SetReadTimeout(20 * time.Millisecond)
	if n, err := port.Read(buf); n != 0 || err != nil {
		t.Fatalf("idle read: %d, %v", n, err)
	}
}

func TestNullModem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, err := NullModem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pa, err := Open(a, Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	pb, err := Open(b, Mode{Baud: 9600})
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	pa.Write([]byte("ping"))
	pb.SetReadTimeout(5 * time.Second)
	buf := make([]byte, 4)
	n, err := io.ReadFull(readerFunc(pb.Read), buf)
	if n != 4 || err != nil || string(buf) != "ping" {
		t.Fatalf("b read %q, %v", buf[:n], err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestListDoesNotFail(t *testing.T) {
	ports, err := List()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.Name == "" {
			t.Fatalf("a port without a name: %+v", p)
		}
	}
	if Adapter("1a86", "7523") != "CH340" || Adapter("ffff", "ffff") != "" {
		t.Fatal("adapter names")
	}
}
