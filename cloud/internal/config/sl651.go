package config

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// SL651 is the cloud as an SL 651-2014 central station (中心站): a TCP
// listener for hydrological telemetry stations (docs/standards/sl651.md,
// "Fieldwatch as central station"). Off while Listen is empty.
type SL651 struct {
	// Listen is host:port of the listener ("" for none).
	Listen string `yaml:"listen"`
	// Central is this central station's address, 1–255: frames addressed
	// to another centre are refused.
	Central int `yaml:"central"`
	// Timezone is the stations' clock (IANA name): observation and send
	// times carry no zone; default Asia/Shanghai (Beijing time, UTC+8).
	Timezone string `yaml:"timezone"`
	// Confirm is the end character of the confirmations the centre sends
	// (M2): esc (default: the station stays on line) or eot (it may
	// leave).
	Confirm string `yaml:"confirm"`
	// MaxConnections bounds the stations connected at once (default
	// 10 000); IdleTimeout is how long a connection may go without a whole
	// frame before it is closed (default 5m; a station's keep-alive is at
	// most 255 s).
	MaxConnections int           `yaml:"max_connections"`
	IdleTimeout    time.Duration `yaml:"idle_timeout"`
	// Interval is how often a station is expected to report (default 1h,
	// the timed report's usual interval), unless its own says otherwise:
	// the registry's device interval and heartbeat, so a silent station
	// is noticed.
	Interval time.Duration `yaml:"interval"`
	// Stations is the allow-list: a frame from an address not listed is
	// refused.
	Stations []SL651Station `yaml:"stations"`
}

// SL651Station maps a telemetry station to a Fieldwatch station.
type SL651Station struct {
	// Address is the station address, 10 hex digits ("0012345678": for a
	// hydrological station 00 and its 8-digit code).
	Address string `yaml:"address"`
	// Station is the Fieldwatch station (gateway id) its readings belong
	// to; its device id is Address.
	Station string `yaml:"station"`
	Site    string `yaml:"site"`
	// Name and SiteName are the station's and its site's display names,
	// any language.
	Name     string `yaml:"name"`
	SiteName string `yaml:"site_name"`
	// Password, 4 hex digits, is checked when set.
	Password string `yaml:"password"`
	// Interval overrides sl651.interval.
	Interval time.Duration `yaml:"interval"`
	// Elements overrides the default element → metric mapping: key an
	// element's ASCII identifier (PJ, Z, VT) or its 2 hex digits (20, 39,
	// 38), value a metric name, or "-" to drop that element (counted).
	Elements map[string]string `yaml:"elements"`
}

// Confirmation end characters (SL651.Confirm).
const (
	ConfirmESC = "esc"
	ConfirmEOT = "eot"
)

func defaultSL651() SL651 {
	return SL651{Timezone: "Asia/Shanghai", Confirm: ConfirmESC, MaxConnections: 10_000, IdleTimeout: 5 * time.Minute,
		Interval: time.Hour}
}

// Location is Timezone's zone (Validate has checked that it loads).
func (s *SL651) Location() (*time.Location, error) { return time.LoadLocation(s.Timezone) }

// SL651Element resolves an elements key: an ASCII identifier or 2 hex
// digits naming an element that carries numbers.
func SL651Element(key string) (sl651.Element, bool) {
	el, ok := sl651.ElementByCode(key)
	if !ok && len(key) == 2 {
		var id uint16
		if _, err := fmt.Sscanf(strings.ToUpper(key), "%02X", &id); err == nil {
			el, ok = sl651.Elements[id]
		}
	}
	if !ok {
		return el, false
	}
	switch el.Form {
	case sl651.FormBCD, sl651.FormDRP, sl651.FormDRZ:
		return el, true
	}
	return el, false
}

func (s *SL651) validate(r *yamlconf.Report, notGateways []string) {
	const p = "sl651"
	if s.Listen == "" {
		if len(s.Stations) > 0 {
			r.Errorf(p+".listen", "is needed for sl651.stations (host:port, e.g. \":5001\")")
		}
		return
	}
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		r.Errorf(p+".listen", "%q is not host:port", s.Listen)
	}
	if s.Central < 1 || s.Central > 255 {
		r.Errorf(p+".central", "%d is outside 1..255 (the central station address the stations are set to send to)", s.Central)
	}
	if _, err := time.LoadLocation(s.Timezone); s.Timezone == "" || err != nil {
		r.Errorf(p+".timezone", "%q is not a time zone (an IANA name such as Asia/Shanghai)", s.Timezone)
	}
	if s.Confirm != ConfirmESC && s.Confirm != ConfirmEOT {
		r.Errorf(p+".confirm", "%q is not esc or eot", s.Confirm)
	}
	if s.MaxConnections < 1 || s.MaxConnections > 1_000_000 {
		r.Errorf(p+".max_connections", "%d is outside 1..1000000", s.MaxConnections)
	}
	if s.IdleTimeout < time.Second || s.IdleTimeout > 24*time.Hour {
		r.Errorf(p+".idle_timeout", "%v is outside 1s..24h", s.IdleTimeout)
	}
	if s.Interval < time.Minute || s.Interval > 31*24*time.Hour {
		r.Errorf(p+".interval", "%v is outside 1m..744h", s.Interval)
	}
	if len(s.Stations) == 0 {
		r.Errorf(p+".stations", "lists no station: every station address must be listed with its station id")
	}
	addrs, ids := map[string]int{}, map[string]int{}
	for i, st := range s.Stations {
		sp := yamlconf.Join(p, "stations", i)
		if _, err := sl651.ParseAddress(st.Address); err != nil {
			r.Errorf(sp+".address", "%q is not 10 hex digits (quote it: \"0012345678\")", st.Address)
		} else if j, dup := addrs[strings.ToUpper(st.Address)]; dup {
			r.Errorf(sp+".address", "%s is also stations[%d]", st.Address, j)
		} else {
			addrs[strings.ToUpper(st.Address)] = i
		}
		if err := telemetry.CheckName("station", st.Station); err != nil {
			r.Errorf(sp+".station", "%v", err)
		} else if j, dup := ids[st.Station]; dup {
			r.Errorf(sp+".station", "%q is also stations[%d]", st.Station, j)
		} else {
			ids[st.Station] = i
			for _, u := range notGateways {
				if u == st.Station {
					r.Errorf(sp+".station", "%q is a broker user that is not a gateway", st.Station)
				}
			}
		}
		if st.Site != "" {
			if err := telemetry.CheckName("site", st.Site); err != nil {
				r.Errorf(sp+".site", "%v", err)
			}
		}
		if err := telemetry.CheckDisplayName(st.Name); err != nil {
			r.Errorf(sp+".name", "%v", err)
		}
		if err := telemetry.CheckDisplayName(st.SiteName); err != nil {
			r.Errorf(sp+".site_name", "%v", err)
		}
		if st.Password != "" {
			var pw uint16
			if n, err := fmt.Sscanf(st.Password, "%04X", &pw); len(st.Password) != 4 || n != 1 || err != nil {
				r.Errorf(sp+".password", "%q is not 4 hex digits (quote it: \"1234\")", st.Password)
			}
		}
		if st.Interval != 0 && (st.Interval < time.Minute || st.Interval > 31*24*time.Hour) {
			r.Errorf(sp+".interval", "%v is outside 1m..744h", st.Interval)
		}
		for k, m := range st.Elements {
			ep := yamlconf.Join(sp, "elements", k)
			if _, ok := SL651Element(k); !ok {
				r.Errorf(ep, "%q is not an SL 651 element that carries values (an ASCII identifier such as PJ, or 2 hex digits such as 20)", k)
			}
			if m == "-" {
				continue
			}
			if err := telemetry.CheckName("metric", m); err != nil {
				r.Errorf(ep, "%v (or \"-\" to drop the element)", err)
			}
		}
	}
}
