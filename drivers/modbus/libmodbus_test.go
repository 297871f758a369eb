package modbus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/libmodbus"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestAgainstLibmodbus checks our client against libmodbus, an independent
// Modbus implementation: over a serial line (two pseudo-terminals back to
// back, like a null-modem cable) and over TCP.
func TestAgainstLibmodbus(t *testing.T) {
	bin := libmodbus.Build(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ours, theirs, err := serialport.NullModem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	server := libmodbus.Start(t, bin, "rtu", theirs, "9600", "7")
	port := testenv.FreePort(t)
	libmodbus.Start(t, bin, "tcp", fmt.Sprint(port))
	mode := serialport.Mode{Baud: 9600}
	clients := map[string]struct {
		c    modbus.Client
		unit uint8
	}{
		"rtu": {modbus.NewRTU(ours, modbus.RTUOptions{Mode: mode, Timeout: patient}), 7},
		"tcp": {modbus.NewTCP(fmt.Sprintf("127.0.0.1:%d", port), patient), 1},
	}
	for name, tc := range clients {
		t.Run(name, func(t *testing.T) {
			c, unit := tc.c, tc.unit
			defer c.Close()
			words, err := c.ReadRegisters(ctx, unit, modbus.Holding, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range words {
				if w != uint16(libmodbus.Holding0+i) {
					t.Fatalf("holding %d = %d, want %d", i, w, libmodbus.Holding0+i)
				}
			}
			words, err = c.ReadRegisters(ctx, unit, modbus.Input, 40, 10)
			if err != nil || words[9] != libmodbus.Input0+49 {
				t.Fatalf("input 40..49: %v, %v", words, err)
			}
			// 125 registers is the most one request may read.
			if _, err := c.ReadRegisters(ctx, unit, modbus.Holding, 0, 100); err != nil {
				t.Fatalf("100 registers: %v", err)
			}
			// Values libmodbus encoded, decoded by our fields.
			words, err = c.ReadRegisters(ctx, unit, modbus.Holding, 10, 6)
			if err != nil {
				t.Fatal(err)
			}
			f := modbus.Field{Type: modbus.Float32}
			f.Normalize()
			if v, bad := f.Decode(words[0:2]); v != 21.5 || bad != "" {
				t.Fatalf("float32 ABCD = %v %q", v, bad)
			}
			i32 := modbus.Field{Type: modbus.Int32, Order: modbus.CDAB}
			i32.Normalize()
			if v, _ := i32.Decode(words[2:4]); v != -123456 {
				t.Fatalf("int32 CDAB = %v", v)
			}
			f.Order = modbus.CDAB
			if v, _ := f.Decode(words[4:6]); v != 21.5 {
				t.Fatalf("float32 CDAB = %v", v)
			}
			// Writes, FC06 and FC16, read back.
			if err := c.WriteRegister(ctx, unit, 50, 4242); err != nil {
				t.Fatal(err)
			}
			if err := c.WriteRegisters(ctx, unit, 60, []uint16{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			words, err = c.ReadRegisters(ctx, unit, modbus.Holding, 50, 13)
			if err != nil || words[0] != 4242 || words[10] != 1 || words[12] != 3 {
				t.Fatalf("after writes: %v, %v", words, err)
			}
			// FC05 coils: in the map it works, past it exception 2.
			if err := c.WriteCoil(ctx, unit, 3, true); err != nil {
				t.Fatalf("write coil: %v", err)
			}
			if err := c.WriteCoil(ctx, unit, 99, false); !errors.As(err, new(*modbus.ExceptionError)) {
				t.Fatalf("write coil past the map: %v", err)
			}
			// Past the end of the map: exception 2, the unit is fine.
			_, err = c.ReadRegisters(ctx, unit, modbus.Holding, 95, 10)
			var ex *modbus.ExceptionError
			if !errors.As(err, &ex) || ex.Code != 2 {
				t.Fatalf("read past the map: %v, want exception 2", err)
			}
			if _, err := c.ReadRegisters(ctx, unit, modbus.Holding, 0, 1); err != nil {
				t.Fatalf("after the exception: %v", err)
			}
		})
	}
	// On the serial line, a unit that is not there times out (whatever the
	// timeout: nothing answers); the one that is still answers afterwards.
	// libmodbus's server takes whatever comes within its response timeout,
	// 500 ms, after a frame for another unit as that unit's reply and
	// ignores it (real units do not): the next request waits until it says
	// it has.
	absent := modbus.NewRTU(ours, modbus.RTUOptions{Mode: mode, Timeout: 100 * time.Millisecond})
	_, err = absent.ReadRegisters(ctx, 8, modbus.Holding, 0, 1)
	absent.Close()
	if modbus.Kind(err) != "timeout" {
		t.Fatalf("absent unit: %v", err)
	}
	testenv.Eventually(t, "libmodbus to listen again", 20*time.Second, func() bool { return server.Said("ignored") == 1 })
	rtu := modbus.NewRTU(ours, modbus.RTUOptions{Mode: mode, Timeout: patient})
	defer rtu.Close()
	if _, err := rtu.ReadRegisters(ctx, 7, modbus.Holding, 0, 1); err != nil {
		t.Fatalf("present unit after an absent one: %v", err)
	}
}
