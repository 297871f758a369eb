package sim

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

// StreamPort is a simulated serial device that talks in a stream: an NMEA
// instrument, an RFID reader. It lives on a pseudo-terminal reached through
// a stable symlink (as udev's /dev/serial/by-id links are), writes what its
// generator produces at the line's wire speed, answers what the host writes
// if it has a responder, and can be unplugged mid-frame and plugged back.
type StreamPort struct {
	// Link is the path a gateway opens.
	Link string
	mode serialport.Mode
	gen  func(now time.Time) []byte
	resp func(in []byte, now time.Time) []byte
	// every is how often gen is asked for more.
	every time.Duration

	mu      sync.Mutex
	pty     *serialport.PTY
	stop    context.CancelFunc
	wg      sync.WaitGroup
	written int64
}

// NewStreamPort prepares a device at link. gen (may be nil) is called every
// `every` for bytes to send; respond (may be nil) gets what the host wrote
// and returns the reply.
func NewStreamPort(link string, mode serialport.Mode, every time.Duration, gen func(time.Time) []byte,
	respond func([]byte, time.Time) []byte) *StreamPort {
	return &StreamPort{Link: link, mode: mode, gen: gen, resp: respond, every: every}
}

// Plug connects the device: a new pseudo-terminal behind Link.
func (s *StreamPort) Plug(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pty != nil {
		return fmt.Errorf("already plugged in")
	}
	pty, err := serialport.OpenPTY()
	if err != nil {
		return err
	}
	_ = os.Remove(s.Link)
	if err := os.Symlink(pty.Slave, s.Link); err != nil {
		pty.Close()
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	s.pty, s.stop = pty, cancel
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.talk(cctx, pty) }()
	go func() { defer s.wg.Done(); s.listen(cctx, pty) }()
	return nil
}

// Unplug pulls the device out, after writing partial (half a frame, say)
// and letting it reach the host: the port disappears and the host's reads
// fail. (Bytes still in a pty when it hangs up are discarded, as they are
// in a USB adapter pulled out.)
func (s *StreamPort) Unplug(partial []byte) {
	s.mu.Lock()
	pty, stop := s.pty, s.stop
	s.pty = nil
	s.mu.Unlock()
	if pty == nil {
		return
	}
	if len(partial) > 0 {
		_, _ = pty.Master.Write(partial)
		time.Sleep(time.Duration(len(partial))*s.mode.CharTime() + 100*time.Millisecond)
	}
	stop()
	pty.Close()
	_ = os.Remove(s.Link)
	s.wg.Wait()
}

// Written is how many bytes the device has sent.
func (s *StreamPort) Written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// write sends b paced at the line's speed, in pieces of about 10 ms of
// wire time as a UART hands them over: a host reading the port sees the
// bytes arrive as they would from a real device, and it returns when the
// last byte would have left a real port.
func (s *StreamPort) write(pty *serialport.PTY, b []byte) error {
	char := s.mode.CharTime()
	piece := max(1, int(10*time.Millisecond/char))
	start := time.Now()
	for sent := 0; sent < len(b); {
		n := min(piece, len(b)-sent)
		if _, err := pty.Master.Write(b[sent : sent+n]); err != nil {
			return err
		}
		sent += n
		s.mu.Lock()
		s.written += int64(n)
		s.mu.Unlock()
		time.Sleep(time.Until(start.Add(time.Duration(sent) * char)))
	}
	return nil
}

func (s *StreamPort) talk(ctx context.Context, pty *serialport.PTY) {
	if s.gen == nil {
		return
	}
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		if err := s.write(pty, s.gen(time.Now())); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *StreamPort) listen(ctx context.Context, pty *serialport.PTY) {
	buf := make([]byte, 512)
	for ctx.Err() == nil {
		n, err := pty.Master.Read(buf)
		if err != nil {
			return
		}
		if s.resp == nil || n == 0 {
			continue
		}
		if err := s.write(pty, s.resp(append([]byte(nil), buf[:n]...), time.Now())); err != nil {
			return
		}
	}
}
