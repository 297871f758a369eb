package serialport

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal: Slave is a path that any serial-port code can
// open as if it were /dev/ttyUSB0, and Master is the other end, where a
// simulator reads what was sent and writes replies. The slave starts in raw
// mode (no echo, no line editing), as a real port would behave.
type PTY struct {
	Master *os.File
	Slave  string
	hold   *os.File // keeps the slave open so the master never reads EIO
}

// OpenPTY makes a pseudo-terminal pair.
func OpenPTY() (*PTY, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open /dev/ptmx: %w", err)
	}
	// Not m.Fd(): it would put the master in blocking mode, and a Read
	// blocked in the kernel could then not be interrupted by Close.
	var n uint32
	err = control(m, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlockpt: %w", err)
		}
		var err error
		if n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("ptsname: %w", err)
		}
		return nil
	})
	if err != nil {
		m.Close()
		return nil, err
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, err
	}
	if err := control(s, makeRaw); err != nil {
		m.Close()
		s.Close()
		return nil, err
	}
	return &PTY{Master: m, Slave: name, hold: s}, nil
}

func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("tcgetattr: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Baud is the rate the slave side is configured for right now: what the
// program on the slave asked its "port" for. Simulators use it to answer
// only at the rate their device is set to. (Parity cannot be observed this
// way: Linux's pty driver forces 8 data bits and no parity on every change.)
func (p *PTY) Baud() (int, error) {
	var baud int
	err := control(p.hold, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		baud = speedOf(t.Cflag & unix.CBAUD)
		return nil
	})
	return baud, err
}

// control runs f on f's descriptor without taking it out of Go's poller.
func control(file *os.File, f func(fd int) error) error {
	rc, err := file.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

var speeds = map[uint32]int{
	unix.B300: 300, unix.B600: 600, unix.B1200: 1200, unix.B2400: 2400, unix.B4800: 4800, unix.B9600: 9600,
	unix.B19200: 19200, unix.B38400: 38400, unix.B57600: 57600, unix.B115200: 115200, unix.B230400: 230400,
}

func speedOf(c uint32) int { return speeds[c] }

// Close closes both ends.
func (p *PTY) Close() error {
	p.hold.Close()
	return p.Master.Close()
}

// NullModem connects two pseudo-terminals back to back, like a null-modem
// cable between two serial ports: what one program writes to A, the program
// that opened B reads, and the reverse. It runs until ctx is done.
func NullModem(ctx context.Context) (a, b string, err error) {
	pa, err := OpenPTY()
	if err != nil {
		return "", "", err
	}
	pb, err := OpenPTY()
	if err != nil {
		pa.Close()
		return "", "", err
	}
	var once sync.Once
	stop := func() { once.Do(func() { pa.Close(); pb.Close() }) }
	go func() { <-ctx.Done(); stop() }()
	go func() { io.Copy(pb.Master, pa.Master); stop() }()
	go func() { io.Copy(pa.Master, pb.Master); stop() }()
	return pa.Slave, pb.Slave, nil
}
