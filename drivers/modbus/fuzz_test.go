package modbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
)

// FuzzRTUReply feeds arbitrary bytes to the RTU client as the reply to a
// read of 3 holding registers from unit 1. It must never panic, and must
// return either exactly 3 words or an error of a known kind.
func FuzzRTUReply(f *testing.F) {
	f.Add([]byte{0x01, 0x03, 0x06, 0x02, 0x92, 0xFF, 0x9B, 0x03, 0xE8, 0xD8, 0x0F})
	f.Add([]byte{0x01, 0x83, 0x02, 0xC0, 0xF1})
	f.Add([]byte{0x01, 0x03, 0xFF})
	f.Add([]byte{0x02, 0x03, 0x06, 0x02, 0x92, 0xFF, 0x9B, 0x03, 0xE8, 0xCC, 0xFF})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, reply []byte) {
		l := &replayLink{answer: reply}
		c := &client{t: &rtuTransport{o: RTUOptions{Mode: serialport.Mode{Baud: 115200}, Timeout: time.Millisecond},
			name: "fuzz", dial: func() (link, error) { return l, nil }}}
		words, err := c.ReadRegisters(context.Background(), 1, Holding, 0, 3)
		if err != nil {
			if Kind(err) == "other" {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if len(words) != 3 {
			t.Fatalf("%d words for 3 registers", len(words))
		}
	})
}

// FuzzPDU feeds arbitrary reply PDUs to the read and write checks shared by
// every transport.
func FuzzPDU(f *testing.F) {
	f.Add([]byte{0x03, 0x04, 0x00, 0x01, 0x00, 0x02})
	f.Add([]byte{0x83, 0x02})
	f.Add([]byte{0x06, 0x00, 0x10, 0x00, 0x05})
	f.Fuzz(func(t *testing.T, resp []byte) {
		words, err := parseRead(0x03, 2, resp)
		if err == nil && len(words) != 2 {
			t.Fatalf("%d words for 2 registers", len(words))
		}
		var ex *ExceptionError
		if err != nil && !errors.As(err, &ex) && Kind(err) == "other" {
			t.Fatalf("unclassified: %v", err)
		}
		_ = parseEcho([]byte{0x06, 0x00, 0x10, 0x00, 0x05}, resp)
	})
}
