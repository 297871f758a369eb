// Package store defines where the cloud keeps readings: the Store interface,
// with an InfluxDB implementation (store/influx) for production and an
// embedded SQLite one (store/sqlite) that needs no server. Both pass the same
// conformance suite (store/storetest).
//
// Writes are idempotent: the same series (gateway, site, device, metric,
// unit) and timestamp overwrite, so a replayed batch changes nothing.
package store

import (
	"context"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Store keeps readings and answers the dashboard's and API's questions.
// Implementations are safe for concurrent use.
type Store interface {
	// Write stores readings of one gateway. It returns only when they are
	// durable in the store; an error means none or some were stored and
	// the caller must not acknowledge them.
	Write(ctx context.Context, gateway, site string, rs []telemetry.Reading) error
	// Latest returns the newest sample of every series measured since
	// `since`, of one gateway or, with gateway "", of all.
	Latest(ctx context.Context, gateway string, since time.Time) ([]Sample, error)
	// Series returns one series' samples in [q.From, q.To), oldest first.
	Series(ctx context.Context, q SeriesQuery) ([]Sample, error)
	// WriteEvents stores events of one gateway. An event with the identity
	// (gateway, device, kind, key, time) of a stored one replaces it.
	WriteEvents(ctx context.Context, gateway, site string, es []telemetry.Event) error
	// Events returns events in [q.From, q.To), newest first.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// Close releases connections.
	Close() error
}

// Sample is a stored reading with the gateway and site it came from.
type Sample struct {
	Gateway string            `json:"gateway"`
	Site    string            `json:"site,omitempty"`
	Device  string            `json:"device"`
	Metric  string            `json:"metric"`
	Unit    string            `json:"unit,omitempty"`
	Time    time.Time         `json:"time"`
	Value   *float64          `json:"value"` // nil when the reading had no finite value
	Quality telemetry.Quality `json:"quality"`
}

// SeriesQuery selects a time range of one series.
type SeriesQuery struct {
	Gateway, Device, Metric string
	From, To                time.Time
	// Every, when positive, averages the series into buckets of this width
	// (the sample time is the bucket start; quality is the worst in it).
	Every time.Duration
	// Limit bounds the samples returned (the oldest are kept).
	Limit int
}

// MaxSeriesSamples bounds what one Series call may return.
const MaxSeriesSamples = 100_000

// Event is a stored event with the gateway and site it came from.
type Event struct {
	Gateway string             `json:"gateway"`
	Site    string             `json:"site,omitempty"`
	Device  string             `json:"device"`
	Kind    string             `json:"kind"`
	Key     string             `json:"key,omitempty"`
	Time    time.Time          `json:"time"`
	Attrs   map[string]string  `json:"attrs,omitempty"`
	Values  map[string]float64 `json:"values,omitempty"`
}

// EventQuery selects events; empty fields match everything.
type EventQuery struct {
	Gateway, Device, Kind, Key string
	From, To                   time.Time
	Limit                      int // at most this many, newest first (default and cap MaxEvents)
}

// MaxEvents bounds what one Events call may return.
const MaxEvents = 10_000
