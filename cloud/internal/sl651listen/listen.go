// Package sl651listen is the cloud as an SL 651-2014 central station
// (中心站): a TCP listener that takes hydrological telemetry stations'
// reports, HEX/BCD or ASCII, and puts their values through the same intake
// as a gateway's MQTT batch (registry, early warnings, store).
//
// Each connection has its own goroutine (stationserver), a deadline for
// every frame (sl651.idle_timeout), and frames of at most sl651.MaxFrame
// bytes; a slow or hostile station holds only its own connection. Every
// frame refused — malformed, bad CRC, unknown station, wrong password or
// centre, a function not taken — is counted by kind and logged (throttled),
// never confirmed, and the next good frame on the connection is still
// taken.
//
// Reports taken: link keep-alive (2F: the station is heard, nothing is
// answered), test (30), uniform interval (31: the series expanded into
// readings at their times), timed (32), added (33) and hourly (34). Each
// is confirmed (M2) with the codec's Confirm — same function, serial number
// and send time, ended by ESC or EOT (sl651.confirm), or by ACK when the
// station's message ended with ETB (more follow) — once its readings are
// stored, or when it was stored before (a frame sent again, recognised by
// the commit record of the station's "sl651" stream). A frame that could
// not be stored is not confirmed: the station sends it again.
package sl651listen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/stationserver"
	"github.com/fieldwatch/fieldwatch/protocols/sl651"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Stream is the stream name of every station's readings: their sequence
// numbers are made from the frame (seq), so a frame sent again has the
// numbers it had and the commit record recognises it.
const Stream = "sl651"

// Profile is the profile the registry shows for a station's device.
const Profile = "sl651"

// Sink takes the batches (ingest.Ingestor).
type Sink interface {
	Submit(ctx context.Context, b *telemetry.Batch) (ingest.Submitted, error)
}

// Options configure a Listener.
type Options struct {
	Config   config.SL651
	Sink     Sink
	Registry *registry.Registry
	Log      *slog.Logger
	Reg      prometheus.Registerer
	// MaxRefusals is how many frames in a row a connection may have
	// refused before it is closed (default 100).
	MaxRefusals int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Listener is the central station.
type Listener struct {
	o        Options
	loc      *time.Location
	end      byte
	stations map[sl651.Address]*station
	srv      *stationserver.Server
	ref      *stationserver.Refusals
	m        *metrics
}

type station struct {
	cfg      config.SL651Station
	addr     sl651.Address
	password uint16
	hasPW    bool
	interval time.Duration
	mapping  mapping
}

// Refusal kinds besides the codec's (sl651.Kind…).
const (
	KindUnknownStation = "unknown_station" // the address is not in sl651.stations
	KindPassword       = "password"        // the station's password is set and the frame's differs
	KindCentral        = "central"         // addressed to another central station
	KindDirection      = "direction"       // a down-link frame sent to the centre
	KindFunction       = "function"        // a function the centre does not take (35–51 …), or a packet of a multi-packet (M3) message
	KindStore          = "store"           // the intake did not store it (not confirmed: the station sends it again)
	KindTooMany        = "too_many"        // a report with more values than a frame's sequence numbers can hold
)

var kinds = []string{sl651.KindGarbage, sl651.KindHeader, sl651.KindLength, sl651.KindOversize, sl651.KindTruncated,
	sl651.KindCRC, sl651.KindControl, sl651.KindBody, sl651.KindBCD, sl651.KindElement, sl651.KindDefinition,
	sl651.KindUnsupported, KindUnknownStation, KindPassword, KindCentral, KindDirection, KindFunction, KindStore, KindTooMany}

// New checks o and prepares a listener; Serve runs it.
func New(o Options) (*Listener, error) {
	if o.MaxRefusals <= 0 {
		o.MaxRefusals = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	cfg := o.Config
	loc, err := cfg.Location()
	if err != nil {
		return nil, fmt.Errorf("sl651.timezone: %w", err)
	}
	l := &Listener{o: o, loc: loc, end: sl651.ESC, stations: map[sl651.Address]*station{}}
	if cfg.Confirm == config.ConfirmEOT {
		l.end = sl651.EOT
	}
	for i, sc := range cfg.Stations {
		a, err := sl651.ParseAddress(sc.Address)
		if err != nil {
			return nil, fmt.Errorf("sl651.stations[%d].address: %w", i, err)
		}
		st := &station{cfg: sc, addr: a, interval: cfg.Interval}
		if sc.Interval > 0 {
			st.interval = sc.Interval
		}
		if sc.Password != "" {
			if _, err := fmt.Sscanf(sc.Password, "%04X", &st.password); err != nil {
				return nil, fmt.Errorf("sl651.stations[%d].password: %w", i, err)
			}
			st.hasPW = true
		}
		if st.mapping, err = newMapping(sc.Elements); err != nil {
			return nil, fmt.Errorf("sl651.stations[%d].elements: %w", i, err)
		}
		l.stations[a] = st
	}
	log := o.Log.With("component", "sl651")
	l.o.Log = log
	l.m = newMetrics(o.Reg)
	l.ref = stationserver.NewRefusals(o.Reg, "sl651",
		"SL 651 frames refused (never confirmed), by kind: the codec's (garbage, header, length, oversize, truncated, crc, "+
			"control, body, bcd, element, definition, unsupported) and unknown_station, password, central, direction, "+
			"function, store, too_many.", kinds, log)
	l.srv = &stationserver.Server{Proto: "sl651", MaxConns: cfg.MaxConnections, Handle: l.serveConn, Log: log,
		Metrics: stationserver.NewMetrics(o.Reg, "sl651")}
	return l, nil
}

// Serve takes stations on ln until ctx is done.
func (l *Listener) Serve(ctx context.Context, ln net.Listener) error {
	l.o.Log.Info("SL 651 central station listening", "addr", ln.Addr().String(), "central", l.o.Config.Central,
		"stations", len(l.stations), "confirm", l.o.Config.Confirm)
	return l.srv.Serve(ctx, ln)
}

// serveConn reads frames until the connection ends, its deadline passes,
// or too many frames in a row were refused.
func (l *Listener) serveConn(ctx context.Context, c net.Conn) {
	remote := c.RemoteAddr().String()
	rd := sl651.NewReader(c)
	refused := 0
	for ctx.Err() == nil {
		c.SetReadDeadline(l.o.Now().Add(l.o.Config.IdleTimeout))
		f, err := rd.Next()
		if err != nil {
			if kind := sl651.Kind(err); kind != "" {
				l.ref.Refuse(kind, "SL 651 frame refused", "remote", remote, "err", err)
				if refused++; refused >= l.o.MaxRefusals {
					l.closed("refusals", remote)
					return
				}
				continue
			}
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				l.closed("idle", remote)
			case ctx.Err() != nil:
				l.closed("shutdown", remote)
			default:
				l.closed("eof", remote)
			}
			return
		}
		reply, ok := l.frame(ctx, f, remote)
		if !ok {
			if refused++; refused >= l.o.MaxRefusals {
				l.closed("refusals", remote)
				return
			}
			continue
		}
		refused = 0
		if reply != nil {
			c.SetWriteDeadline(l.o.Now().Add(10 * time.Second))
			if _, err := c.Write(reply); err != nil {
				l.closed("write", remote)
				return
			}
			l.m.confirmations.Inc()
		}
	}
	l.closed("shutdown", remote)
}

func (l *Listener) closed(reason, remote string) {
	l.m.closed.WithLabelValues(reason).Inc()
	l.o.Log.Debug("SL 651 connection closed", "remote", remote, "reason", reason)
}

// frame takes one whole frame: ok false when it was refused (counted and
// logged here); reply is the confirmation to send, if any.
func (l *Listener) frame(ctx context.Context, f sl651.Frame, remote string) (reply []byte, ok bool) {
	refuse := func(kind string, err error) ([]byte, bool) {
		l.ref.Refuse(kind, "SL 651 frame refused", "remote", remote, "station", f.Station.String(),
			"function", fmt.Sprintf("%02X", f.Function), "err", err)
		return nil, false
	}
	if f.Down {
		return refuse(KindDirection, errors.New("a down-link frame (centre to station)"))
	}
	if int(f.Center) != l.o.Config.Central {
		return refuse(KindCentral, fmt.Errorf("addressed to central station %d, this is %d", f.Center, l.o.Config.Central))
	}
	st := l.stations[f.Station]
	if st == nil {
		return refuse(KindUnknownStation, errors.New("the station address is not in sl651.stations"))
	}
	if st.hasPW && f.Password != st.password {
		return refuse(KindPassword, fmt.Errorf("password %04X", f.Password))
	}
	switch f.Function {
	case sl651.FnKeepAlive, sl651.FnTest, sl651.FnInterval, sl651.FnTimed, sl651.FnAdded, sl651.FnHourly:
	default:
		return refuse(KindFunction, fmt.Errorf("function %02X is not a report this centre takes", f.Function))
	}
	if f.Start == sl651.SYN {
		return refuse(KindFunction, errors.New("multi-packet (M3) messages are not taken"))
	}
	r, err := sl651.ParseReport(f, l.loc)
	if err != nil {
		kind := sl651.Kind(err)
		if kind == "" {
			kind = sl651.KindBody
		}
		return refuse(kind, err)
	}
	// Every body's station must be known too (a relay may carry others').
	groups := map[*station][]sl651.Value{}
	for _, v := range r.Values {
		vs := l.stations[v.Station]
		if vs == nil {
			return refuse(KindUnknownStation, fmt.Errorf("the body's station %s is not in sl651.stations", v.Station))
		}
		groups[vs] = append(groups[vs], v)
	}
	fn := fmt.Sprintf("%02X", f.Function)
	now := l.o.Now()
	l.heard(st, now)
	dup := len(groups) > 0
	for _, vst := range sortedStations(groups) {
		if vst != st {
			l.heard(vst, now)
		}
		b, err := l.batch(vst, f, r, groups[vst])
		if err != nil {
			return refuse(KindTooMany, err)
		}
		if len(b.Readings) == 0 {
			dup = false
			continue // every element dropped by the mapping
		}
		res, err := l.o.Sink.Submit(ctx, b)
		if err != nil {
			return refuse(KindStore, err)
		}
		if res == ingest.Duplicate {
			l.m.duplicates.Inc()
		} else {
			dup = false
			l.m.readings.Add(float64(len(b.Readings)))
		}
	}
	l.m.frames.WithLabelValues(fn).Inc()
	l.o.Log.Debug("SL 651 frame", "remote", remote, "station", st.cfg.Station, "function", fn, "serial", r.Serial,
		"values", len(r.Values), "again", dup)
	if f.Function == sl651.FnKeepAlive {
		return nil, true // 6.6.4.2: no down-link
	}
	end := l.end
	if f.End == sl651.ETB {
		end = sl651.ACK // more messages follow: confirmed, and the link stays (table 10)
	}
	cf, err := sl651.Confirm(f, r.Serial, r.SendTime, l.loc, end)
	if err == nil {
		reply, err = cf.Encode()
	}
	if err != nil {
		l.o.Log.Error("BUG: cannot encode a confirmation", "err", err)
		return nil, true
	}
	return reply, true
}

// heard tells the registry the station spoke: online, with its name, site,
// device and the interval it reports at (its heartbeat, so a silent
// station is noticed).
func (l *Listener) heard(st *station, now time.Time) {
	iv := telemetry.Duration(st.interval)
	l.o.Registry.ObserveState(st.cfg.Station, telemetry.State{State: telemetry.StateOnline, Site: st.cfg.Site,
		Name: st.cfg.Name, SiteName: st.cfg.SiteName, Time: now, Heartbeat: iv,
		Devices: []telemetry.DeviceState{{ID: st.addr.String(), Profile: Profile, Interval: iv, Health: "ok"}}}, false)
}

// seqBits: a frame's readings are numbered send time (Unix seconds, 32
// bits) · body checksum (16 bits) · index (12 bits), so a frame sent again
// has the same numbers, and later frames higher ones (the commit record
// forgets the lowest first).
const indexBits = 12

func (l *Listener) batch(st *station, f sl651.Frame, r sl651.Report, vals []sl651.Value) (*telemetry.Batch, error) {
	b := &telemetry.Batch{Gateway: st.cfg.Station, Site: st.cfg.Site, Stream: Stream}
	dev := st.addr.String()
	for _, v := range vals {
		t := st.mapping.target(v.Element)
		if t.Drop {
			l.m.dropped.Inc()
			continue
		}
		rd := telemetry.Reading{Device: dev, Metric: t.Metric, Unit: t.Unit, Value: v.Value, Time: v.Time.UTC(),
			Quality: telemetry.Good, Clock: telemetry.ClockUnknown}
		if !v.Valid {
			rd.Value, rd.Quality = math.NaN(), telemetry.Bad // the station's "no data": kept, so the gap is explained
		}
		b.Readings = append(b.Readings, rd)
	}
	if len(b.Readings) >= 1<<indexBits {
		return nil, fmt.Errorf("%d values in one frame", len(b.Readings))
	}
	sort.SliceStable(b.Readings, func(i, j int) bool { return b.Readings[i].Time.Before(b.Readings[j].Time) })
	sent := r.SendTime.Unix()
	if sent < 1 || sent >= 1<<32 {
		return nil, fmt.Errorf("send time %v", r.SendTime)
	}
	b.FirstSeq = uint64(sent)<<(16+indexBits) | uint64(sl651.CRC16(f.Body))<<indexBits | 1
	return b, nil
}

func sortedStations(g map[*station][]sl651.Value) []*station {
	out := make([]*station, 0, len(g))
	for s := range g {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].cfg.Station, out[j].cfg.Station) < 0 })
	return out
}
