package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/drivers/mqttsrc"
	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/gateway/internal/buffer"
	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/gateway/internal/streams"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// bufferSink writes what a stream device or MQTT source produced to the
// buffer: readings and events each as one record.
func bufferSink(buf *buffer.Buffer) func(stream.Output) error {
	return func(out stream.Output) error {
		if len(out.Readings) > 0 {
			if _, err := buf.Append(out.Readings); err != nil {
				return err
			}
		}
		if len(out.Events) > 0 {
			if _, err := buf.AppendEvents(out.Events); err != nil {
				return err
			}
		}
		return nil
	}
}

// StreamDevice builds the runner's description of a configured stream.
func StreamDevice(cfg *config.Config, s config.Stream, clock func() telemetry.ClockQuality) (streams.Device, error) {
	p, ok := cfg.Profiles.Get(s.Profile)
	if !ok {
		return streams.Device{}, fmt.Errorf("stream %s: unknown profile %s", s.ID, s.Profile)
	}
	dec, err := p.NewDecoder(s.ID, clock, s.Mooring)
	if err != nil {
		return streams.Device{}, fmt.Errorf("stream %s: %w", s.ID, err)
	}
	d := streams.Device{ID: s.ID, Profile: s.Profile, Decoder: dec, Interval: s.Interval, Clock: clock}
	if s.SilentAfter != nil {
		d.SilentAfter = *s.SilentAfter
	}
	switch {
	case s.Port != "":
		d.Open = streams.Serial(s.Port, s.Mode())
		d.CharTime = s.Mode().CharTime()
	case s.Address != "":
		d.Open = streams.TCP(s.Address)
	case s.URL != "":
		d.Fetch = streams.HTTP(s.URL)
	default:
		d.Fetch = streams.File(s.File)
	}
	return d, nil
}

// source is a running MQTT source.
type source struct {
	cfg config.MQTTSource
	src *mqttsrc.Source

	mu       sync.Mutex
	restarts uint64
	lastErr  string
}

// run runs the source until ctx is done. The source reconnects by itself;
// it returns early only when the sink failed (the buffer could not take a
// message, which stays unacknowledged at the broker), and is restarted
// after a pause.
func (s *source) run(ctx context.Context, sink func(stream.Output) error, log *slog.Logger) {
	log = log.With("source", s.cfg.ID)
	for ctx.Err() == nil {
		err := s.src.Run(ctx, sink)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.restarts++
		s.lastErr = err.Error()
		s.mu.Unlock()
		log.Error("MQTT source stopped; restarting", "err", err)
		t := time.NewTimer(5 * time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// SourceStatus is one MQTT source in Status.
type SourceStatus struct {
	ID        string            `json:"id"`
	Profile   string            `json:"profile"`
	Brokers   []string          `json:"brokers"`
	Topic     string            `json:"topic"`
	Connected bool              `json:"connected"`
	Received  uint64            `json:"received"` // messages taken from the broker
	Mapped    uint64            `json:"mapped"`   // payloads that gave readings
	Filtered  uint64            `json:"filtered"` // payloads the profile's filter skips
	Errors    map[string]uint64 `json:"errors"`   // refused payloads by kind
	LastMsg   time.Time         `json:"last_message,omitzero"`
	Connects  uint64            `json:"connects"` // connections made and subscribed
	Lost      uint64            `json:"lost"`     // connections lost
	Restarts  uint64            `json:"restarts"` // restarts after the buffer refused a message
	LastError string            `json:"last_error,omitempty"`
}

func (s *source) status() SourceStatus {
	st := s.src.Stats()
	out := SourceStatus{ID: s.cfg.ID, Profile: s.cfg.Profile, Brokers: s.cfg.Brokers, Topic: s.cfg.Topic,
		Connected: s.src.Connected(), Received: st.Received, Mapped: st.Frames, Filtered: st.Filtered,
		Errors: st.Errors, LastMsg: st.LastFrame, Connects: st.Connects, Lost: st.Lost, LastError: st.LastError}
	s.mu.Lock()
	out.Restarts = s.restarts
	if out.LastError == "" {
		out.LastError = s.lastErr
	}
	s.mu.Unlock()
	return out
}

// StreamStatus is one stream device in Status.
type StreamStatus struct {
	ID         string            `json:"id"`
	Profile    string            `json:"profile"`
	Where      string            `json:"where"` // port and baud, address, URL or file
	Health     string            `json:"health"`
	Connected  bool              `json:"connected"`
	Frames     uint64            `json:"frames"`
	LastFrame  time.Time         `json:"last_frame,omitzero"`
	Errors     map[string]uint64 `json:"errors"`
	Reconnects uint64            `json:"reconnects"`
	LastError  string            `json:"last_error,omitempty"`
}

// sourceCollector exports the MQTT sources' counters as Prometheus metrics.
// The counters belong to the running setup; a reload starts them again,
// which Prometheus reads as a counter reset.
type sourceCollector struct{ a *App }

var (
	sourceMessages = prometheus.NewDesc("fieldwatch_gateway_mqtt_source_messages_total",
		"Messages of an MQTT source: received (from the broker), mapped (a payload the profile's mapping took) and filtered (skipped by the profile's filter).",
		[]string{"source", "result"}, nil)
	sourceErrors = prometheus.NewDesc("fieldwatch_gateway_mqtt_source_errors_total",
		"Problems in an MQTT source's payloads, by kind: whole payloads refused (oversize, invalid_json, no_device, bad_device) and fields or times that could not be used (not_number, no_time, bad_time).",
		[]string{"source", "kind"}, nil)
	sourceConnected = prometheus.NewDesc("fieldwatch_gateway_mqtt_source_connected",
		"1 while an MQTT source is connected and subscribed.", []string{"source"}, nil)
	sourceLost = prometheus.NewDesc("fieldwatch_gateway_mqtt_source_connections_lost_total",
		"Connections of an MQTT source lost.", []string{"source"}, nil)
)

func (c sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sourceMessages
	ch <- sourceErrors
	ch <- sourceConnected
	ch <- sourceLost
}

func (c sourceCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.a.current()
	if r == nil {
		return
	}
	for _, s := range r.sources {
		st := s.status()
		for kind, n := range st.Errors {
			ch <- prometheus.MustNewConstMetric(sourceErrors, prometheus.CounterValue, float64(n), st.ID, kind)
		}
		ch <- prometheus.MustNewConstMetric(sourceMessages, prometheus.CounterValue, float64(st.Mapped), st.ID, "mapped")
		ch <- prometheus.MustNewConstMetric(sourceMessages, prometheus.CounterValue, float64(st.Filtered), st.ID, "filtered")
		ch <- prometheus.MustNewConstMetric(sourceMessages, prometheus.CounterValue, float64(st.Received), st.ID, "received")
		conn := 0.0
		if st.Connected {
			conn = 1
		}
		ch <- prometheus.MustNewConstMetric(sourceConnected, prometheus.GaugeValue, conn, st.ID)
		ch <- prometheus.MustNewConstMetric(sourceLost, prometheus.CounterValue, float64(st.Lost), st.ID)
	}
}
