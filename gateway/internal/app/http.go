package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldwatch/fieldwatch/gateway/internal/fleet"
	"github.com/fieldwatch/fieldwatch/gateway/internal/update"
	"github.com/fieldwatch/fieldwatch/gateway/internal/uplink"
	"github.com/fieldwatch/fieldwatch/internal/version"
)

// Status is what /status returns and `fieldwatch-gateway status` prints.
type Status struct {
	Gateway   string         `json:"gateway"`
	Site      string         `json:"site,omitempty"`
	Version   string         `json:"version"`
	Started   time.Time      `json:"started"`
	Connected bool           `json:"connected"`
	Brokers   []string       `json:"brokers"`
	Buffer    BufferStatus   `json:"buffer"`
	Uplink    uplink.Status  `json:"uplink"`
	Devices   []DeviceStatus `json:"devices"`
	Streams   []StreamStatus `json:"streams"`
	Sources   []SourceStatus `json:"mqtt_sources"`
	HJ212     []HJ212Status  `json:"hj212_uplinks,omitempty"`
	// Fleet is remote configuration: the version running, the last error
	// and rollback, refusals by reason (docs/fleet.md).
	Fleet *fleet.Status `json:"fleet,omitempty"`
	// Commands counts the remote commands handled by result (ok, failed,
	// or the reason of a refusal).
	Commands map[string]uint64 `json:"commands,omitempty"`
	// Update is binary updates: the release pending, the last error and
	// rollback, refusals by reason (docs/fleet.md, Binary updates).
	Update *update.Status `json:"update,omitempty"`
}

// HJ212Status is one HJ 212 uplink in Status: its platform, whether it is
// connected, and its cursor in the buffer for each kind of data it sends.
type HJ212Status struct {
	Name      string        `json:"name"`
	Address   string        `json:"address"`
	MN        string        `json:"mn"`
	Connected bool          `json:"connected"`
	Kinds     []HJ212Cursor `json:"kinds"`
}

// HJ212Cursor is one kind of data an HJ 212 uplink sends (realtime,
// minute, hour, day) and its cursor.
type HJ212Cursor struct {
	Kind      string `json:"kind"`
	Confirmed uint64 `json:"confirmed_through"` // the cursor
	Pending   uint64 `json:"pending"`           // items not yet confirmed by the platform
	Dropped   uint64 `json:"dropped"`           // items the budget dropped before the platform had them
}

// BufferStatus is the buffer part of Status.
type BufferStatus struct {
	Stream         string `json:"stream"`
	Readings       uint64 `json:"readings"`
	Bytes          int64  `json:"bytes"`
	AckedThrough   uint64 `json:"acked_through"`
	NextSeq        uint64 `json:"next_seq"`
	Dropped        uint64 `json:"dropped"`
	GapEvents      uint64 `json:"gap_events"`
	TruncatedBytes int64  `json:"truncated_bytes"`
}

// DeviceStatus is one device in Status.
type DeviceStatus struct {
	ID               string    `json:"id"`
	Bus              string    `json:"bus"`
	Profile          string    `json:"profile"`
	Unit             uint8     `json:"unit"`
	Interval         string    `json:"interval"`
	Health           string    `json:"health"`
	LastGood         time.Time `json:"last_good,omitzero"`
	LastError        string    `json:"last_error,omitempty"`
	Failures         int       `json:"failures"`
	QuarantinedUntil time.Time `json:"quarantined_until,omitzero"`
	Stats            UnitStats `json:"stats"`
}

// UnitStats are a unit's request statistics.
type UnitStats struct {
	Requests     uint64            `json:"requests"`
	Timeouts     uint64            `json:"timeouts"`
	CRCErrors    uint64            `json:"crc_errors"`
	Exceptions   map[string]uint64 `json:"exceptions,omitempty"` // code → count
	OtherErrors  uint64            `json:"other_errors"`
	SkippedPolls uint64            `json:"skipped_polls"`
	LatencyLast  string            `json:"latency_last"`
	LatencyAvg   string            `json:"latency_avg"`
	LatencyMax   string            `json:"latency_max"`
}

func (a *App) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if a.current() == nil {
			http.Error(w, "starting or reloading", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("POST /devices/{id}/mode", a.setMode)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		r := a.current()
		if r == nil {
			http.Error(w, "starting or reloading", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(a.status(r))
	})
	return mux
}

func (a *App) status(r *running) Status {
	bs := r.buf.Stats()
	s := Status{Gateway: r.cfg.Gateway.ID, Site: r.cfg.Gateway.Site, Version: version.Version, Started: a.started.UTC(),
		Connected: r.up.Connected(), Brokers: r.cfg.Uplink.Brokers,
		Buffer: BufferStatus{Stream: r.buf.Stream(), Readings: bs.Readings, Bytes: bs.Bytes, AckedThrough: r.buf.Acked(),
			NextSeq: r.buf.Next(), Dropped: bs.Dropped, GapEvents: bs.Gaps, TruncatedBytes: bs.TruncatedBytes},
		Uplink: r.up.Status()}
	if a.fleet != nil {
		fs := a.fleet.Status()
		s.Fleet = &fs
	}
	if r.cfg.CommandsEnabled() {
		s.Commands = a.cmds.Counts()
	}
	if r.cfg.UpdatesEnabled() {
		us := a.update.Status()
		s.Update = &us
	}
	for _, b := range r.buses {
		for _, d := range b.Status() {
			st := d.Stats
			us := UnitStats{Requests: st.Requests, Timeouts: st.Timeouts, CRCErrors: st.CRCErrors, OtherErrors: st.OtherErrors,
				SkippedPolls: st.SkippedPolls, LatencyLast: round(st.LatencyLast), LatencyAvg: round(st.LatencyAvg),
				LatencyMax: round(st.LatencyMax)}
			for code, n := range st.Exceptions {
				if us.Exceptions == nil {
					us.Exceptions = map[string]uint64{}
				}
				us.Exceptions[fmt.Sprint(code)] = n
			}
			s.Devices = append(s.Devices, DeviceStatus{ID: d.ID, Bus: d.Bus, Profile: d.Profile, Unit: d.Unit,
				Interval: d.Interval.String(), Health: d.Health, LastGood: d.LastGood, LastError: d.LastError, Failures: d.Failures,
				QuarantinedUntil: d.QuarantinedUntil, Stats: us})
		}
	}
	for i, sr := range r.streams {
		st := sr.Status()
		s.Streams = append(s.Streams, StreamStatus{ID: st.ID, Profile: st.Profile, Where: r.cfg.Streams[i].Where(),
			Health: st.Health, Connected: st.Connected, Frames: st.Frames, LastFrame: st.LastFrame, Errors: st.Errors,
			Reconnects: st.Reconnects, LastError: st.LastError})
	}
	for _, src := range r.sources {
		s.Sources = append(s.Sources, src.status())
	}
	for i, h := range r.hj212 {
		c := r.cfg.HJ212Uplinks[i]
		hs := HJ212Status{Name: c.Name, Address: c.Address, MN: c.MN, Connected: h.Connected()}
		for _, k := range c.Kinds() {
			cs := r.buf.Consumer(c.Consumer(k)).Stats()
			hs.Kinds = append(hs.Kinds, HJ212Cursor{Kind: k, Confirmed: cs.Confirmed, Pending: cs.Pending, Dropped: cs.Dropped})
		}
		s.HJ212 = append(s.HJ212, hs)
	}
	return s
}

// round shows a latency to 0.1 ms (1 µs below a millisecond).
func round(d time.Duration) string {
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}
