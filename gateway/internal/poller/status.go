package poller

import (
	"errors"
	"maps"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/modbus"
)

// Health of a device as the gateway sees it.
const (
	HealthUnknown     = "unknown"     // not polled yet
	HealthOK          = "ok"          // the last poll read everything
	HealthFailing     = "failing"     // the last poll failed
	HealthQuarantined = "quarantined" // silent for several polls: tried once per backoff period
)

// DeviceStatus is a device's health and statistics, for the state message,
// /status and `fieldwatch-gateway status`.
type DeviceStatus struct {
	ID, Bus, Profile string
	Unit             uint8
	Interval         time.Duration
	Health           string
	LastGood         time.Time
	LastError        string
	Failures         int       // consecutive failed polls
	QuarantinedUntil time.Time // zero unless quarantined
	Stats            UnitStats
}

func (s DeviceStatus) clone() DeviceStatus {
	s.Stats.Exceptions = maps.Clone(s.Stats.Exceptions)
	return s
}

// UnitStats are a unit's request statistics since the gateway started.
type UnitStats struct {
	Requests     uint64          // sent, retries included
	Timeouts     uint64          // no reply
	CRCErrors    uint64          // reply with a bad checksum
	Exceptions   map[byte]uint64 // exception code → count
	OtherErrors  uint64          // wrong unit or function, short or malformed replies, connection failures
	SkippedPolls uint64          // polls not made while quarantined
	Quarantines  uint64          // backoff periods entered (each costs at most one request)
	Probes       uint64          // requests sent to end a quarantine
	LatencyLast  time.Duration   // of the last good request
	LatencyAvg   time.Duration   // exponentially weighted, of good requests
	LatencyMax   time.Duration
}

func (s *UnitStats) observe(lat time.Duration) {
	s.LatencyLast = lat
	s.LatencyMax = max(s.LatencyMax, lat)
	if s.LatencyAvg == 0 {
		s.LatencyAvg = lat
	} else {
		s.LatencyAvg += (lat - s.LatencyAvg) / 8
	}
}

func exceptionCode(err error) byte {
	var ex *modbus.ExceptionError
	if errors.As(err, &ex) {
		return ex.Code
	}
	return 0
}
