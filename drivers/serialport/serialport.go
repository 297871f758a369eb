// Package serialport opens, configures and lists serial ports (through
// go.bug.st/serial), and makes pseudo-terminals that stand in for them in
// tests and simulators.
package serialport

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"syscall"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// Mode is a serial line's framing.
type Mode struct {
	Baud     int    // bits per second
	DataBits int    // 7 or 8 (default 8)
	Parity   string // "none" (default), "even" or "odd"
	StopBits int    // 1 (default) or 2
}

// Bauds are the standard rates field devices use, slowest first.
var Bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200}

func (m Mode) normalized() Mode {
	if m.DataBits == 0 {
		m.DataBits = 8
	}
	if m.Parity == "" {
		m.Parity = "none"
	}
	if m.StopBits == 0 {
		m.StopBits = 1
	}
	return m
}

// Check reports what is wrong with m.
func (m Mode) Check() error {
	m = m.normalized()
	if m.Baud < 300 || m.Baud > 4_000_000 {
		return fmt.Errorf("baud %d is outside 300..4000000", m.Baud)
	}
	if m.DataBits != 7 && m.DataBits != 8 {
		return fmt.Errorf("data bits %d is not 7 or 8", m.DataBits)
	}
	if m.Parity != "none" && m.Parity != "even" && m.Parity != "odd" {
		return fmt.Errorf("parity %q is not none, even or odd", m.Parity)
	}
	if m.StopBits != 1 && m.StopBits != 2 {
		return fmt.Errorf("stop bits %d is not 1 or 2", m.StopBits)
	}
	return nil
}

// CharBits is the bits one character takes on the wire: start, data,
// parity, stop.
func (m Mode) CharBits() int {
	m = m.normalized()
	bits := 1 + m.DataBits + m.StopBits
	if m.Parity != "none" {
		bits++
	}
	return bits
}

// CharTime is the time one character takes on the wire.
func (m Mode) CharTime() time.Duration {
	m = m.normalized()
	if m.Baud <= 0 {
		return 0
	}
	return time.Duration(m.CharBits()) * time.Second / time.Duration(m.Baud)
}

func (m Mode) String() string {
	m = m.normalized()
	return fmt.Sprintf("%d %d%c%d", m.Baud, m.DataBits, "NEO"[map[string]int{"none": 0, "even": 1, "odd": 2}[m.Parity]], m.StopBits)
}

// Port is an open serial line.
type Port interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds each Read; a Read that times out returns 0, nil.
	SetReadTimeout(d time.Duration) error
	// ResetInputBuffer discards what was received and not read.
	ResetInputBuffer() error
	// Drain waits until everything written has left the port.
	Drain() error
}

// Open opens the serial port name (e.g. /dev/ttyUSB0) with mode m.
func Open(name string, m Mode) (Port, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	m = m.normalized()
	sm := &serial.Mode{BaudRate: m.Baud, DataBits: m.DataBits, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	switch m.Parity {
	case "even":
		sm.Parity = serial.EvenParity
	case "odd":
		sm.Parity = serial.OddParity
	}
	if m.StopBits == 2 {
		sm.StopBits = serial.TwoStopBits
	}
	p, err := serial.Open(name, sm)
	if err != nil {
		var pe *serial.PortError
		if errors.As(err, &pe) && pe.Code() == serial.PortBusy {
			return nil, fmt.Errorf("cannot open %s: another program holds it (is a gateway already running?)", name)
		}
		if errors.As(err, &pe) && pe.Code() == serial.PermissionDenied {
			return nil, fmt.Errorf("cannot open %s: permission denied (add the user to the dialout group)", name)
		}
		return nil, fmt.Errorf("cannot open %s: %w", name, err)
	}
	return retrying{p}, nil
}

// maxEINTR bounds the retries of one call interrupted by signals.
const maxEINTR = 100

// retrying retries what go.bug.st/serial does not when a signal interrupts
// a system call (EINTR): Go's scheduler signals threads (SIGURG) to preempt
// goroutines, so a write or a tcdrain on a busy gateway is interrupted now
// and then, and reporting that as a failed line would reopen the port and
// lose the request. Reads are retried by the library itself.
type retrying struct{ serial.Port }

// Write writes all of b, resuming after an interrupted or partial write.
func (r retrying) Write(b []byte) (int, error) {
	n := 0
	for tries := 0; n < len(b); {
		k, err := r.Port.Write(b[n:])
		n += max(k, 0)
		switch {
		case errors.Is(err, syscall.EINTR) && tries < maxEINTR:
			tries++
		case err != nil:
			return n, err
		case k == 0:
			return n, io.ErrShortWrite
		}
	}
	return n, nil
}

// Drain waits until everything written has left the port.
func (r retrying) Drain() error {
	for tries := 0; ; tries++ {
		err := r.Port.Drain()
		if !errors.Is(err, syscall.EINTR) || tries == maxEINTR {
			return err
		}
	}
}

// Info describes a serial port found on the system.
type Info struct {
	Name         string `json:"name"`
	USB          bool   `json:"usb"`
	VID          string `json:"vid,omitempty"`
	PID          string `json:"pid,omitempty"`
	Serial       string `json:"serial,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
}

// List returns the serial ports on this machine, USB details included.
func List() ([]Info, error) {
	ports, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("cannot list serial ports: %w", err)
	}
	out := make([]Info, 0, len(ports))
	for _, p := range ports {
		out = append(out, Info{Name: p.Name, USB: p.IsUSB, VID: p.VID, PID: p.PID, Serial: p.SerialNumber,
			Manufacturer: p.Manufacturer, Product: p.Product})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Adapter names common USB–serial chips by USB vendor and product id, to
// help a technician tell the RS485 dongle from the modem.
func Adapter(vid, pid string) string {
	known := map[string]string{
		"1a86:7523": "CH340", "1a86:55d4": "CH9102", "1a86:7522": "CH340K",
		"0403:6001": "FTDI FT232R", "0403:6015": "FTDI FT230X", "0403:6010": "FTDI FT2232",
		"10c4:ea60": "Silicon Labs CP210x", "067b:2303": "Prolific PL2303", "067b:23a3": "Prolific PL2303GC",
		"2341:0043": "Arduino Uno", "1209:0001": "test device",
	}
	return known[vid+":"+pid]
}
