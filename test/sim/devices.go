package sim

import (
	"fmt"
	"math"
	"time"
)

// Device answers register reads like a real sensor.
type Device interface {
	// Registers returns the holding registers of the device at time now,
	// keyed by address. A read of an address not in the map is answered
	// with exception 2, as the real sensors do.
	Registers(now time.Time) map[uint16]uint16
}

// Kinds of simulated device, by the profile they answer to.
var Kinds = map[string]func(env *Environment, probe int) Device{
	"soil": func(env *Environment, probe int) Device { return &SoilProbe{Env: env, Probe: probe} },
	"air":  func(env *Environment, _ int) Device { return &AirSensor{Env: env} },
}

// NewDevice makes a device of kind ("soil", "air").
func NewDevice(kind string, env *Environment, probe int) (Device, error) {
	f, ok := Kinds[kind]
	if !ok {
		return nil, fmt.Errorf("unknown device kind %q (soil, air)", kind)
	}
	return f(env, probe), nil
}

// SoilProbe is a Renke RS-ECTH-N01: 0x0000 moisture uint16 ×0.1 %, 0x0001
// temperature int16 ×0.1 °C, 0x0002 EC uint16 µS/cm, 0x07D0 address,
// 0x07D1 baud code.
type SoilProbe struct {
	Env   *Environment
	Probe int
}

// Registers implements Device.
func (s *SoilProbe) Registers(now time.Time) map[uint16]uint16 {
	return map[uint16]uint16{
		0x0000: tenths(s.Env.SoilMoisture(now, s.Probe)),
		0x0001: tenths(s.Env.SoilTemperature(now, s.Probe)),
		0x0002: uint16(math.Round(s.Env.SoilEC(now, s.Probe))),
	}
}

// AddressRegister implements Settings.
func (s *SoilProbe) AddressRegister() uint16 { return 0x07D0 }

// BaudRegister implements Settings.
func (s *SoilProbe) BaudRegister() (uint16, map[uint16]int) { return 0x07D1, renkeBauds }

// renkeBauds are the Renke family's baud codes.
var renkeBauds = map[uint16]int{0: 2400, 1: 4800, 2: 9600}

// AirSensor is a Renke RS-WS-N01-8: 0x0000 humidity ×0.1 %, 0x0001
// temperature int16 ×0.1 °C.
type AirSensor struct {
	Env *Environment
}

// Registers implements Device.
func (a *AirSensor) Registers(now time.Time) map[uint16]uint16 {
	return map[uint16]uint16{
		0x0000: tenths(a.Env.AirHumidity(now)),
		0x0001: tenths(a.Env.AirTemperature(now)),
	}
}

// AddressRegister implements Settings.
func (a *AirSensor) AddressRegister() uint16 { return 0x07D0 }

// BaudRegister implements Settings.
func (a *AirSensor) BaudRegister() (uint16, map[uint16]int) { return 0x07D1, renkeBauds }

// tenths encodes v as a 16-bit two's-complement count of tenths.
func tenths(v float64) uint16 { return uint16(int16(math.Round(v * 10))) }
