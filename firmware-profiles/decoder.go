package profiles

import (
	"fmt"

	"github.com/fieldwatch/fieldwatch/drivers/ndbc"
	"github.com/fieldwatch/fieldwatch/drivers/nmea"
	"github.com/fieldwatch/fieldwatch/drivers/rfid"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Stream reports whether the profile describes a stream device (one whose
// bytes go through a stream.Decoder: nmea, ndbc, rfid).
func (p *Profile) Stream() bool { return p.Nmea != nil || p.Ndbc != nil || p.Rfid != nil }

// NewDecoder returns a decoder of the profile's kind for device; clock
// gives the clock quality of acquisition times. mooring, if not nil, watches
// an NMEA buoy's position.
func (p *Profile) NewDecoder(device string, clock func() telemetry.ClockQuality, mooring *nmea.Mooring) (stream.Decoder, error) {
	switch {
	case p.Nmea != nil:
		d := nmea.New(*p.Nmea, device, clock)
		if mooring != nil {
			d.WithMooring(*mooring)
		}
		return d, nil
	case p.Ndbc != nil:
		return ndbc.New(*p.Ndbc, device), nil
	case p.Rfid != nil:
		return rfid.New(*p.Rfid, device, clock), nil
	}
	return nil, fmt.Errorf("%s is a %s profile, not a stream device", p.Model, p.Kind)
}
