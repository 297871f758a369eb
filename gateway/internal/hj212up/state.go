package hj212up

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// devices is what an uplink's cursor knows, at one point of the buffer, of
// the devices behind its factors: each one's mode (mode events), whether
// the gateway has it quarantined (quarantine events: its link to the
// instrument is down), and the factors its readings mapped to (so a
// quarantined device's factors can be flagged B though it sends nothing).
//
// It is built by reading the buffer in order and kept with the cursor
// (the consumer's note), so that after a restart the items after the
// cursor are flagged by the state at the cursor, not by an empty one.
type devices struct {
	mode  map[string]string    // device → its mode, when not normal
	down  map[string]time.Time // device → quarantined since
	codes map[string][]string  // device → the factor codes its readings mapped to, sorted
}

func newDevices() *devices {
	return &devices{mode: map[string]string{}, down: map[string]time.Time{}, codes: map[string][]string{}}
}

func (d *devices) clone() *devices {
	c := &devices{mode: maps.Clone(d.mode), down: maps.Clone(d.down), codes: make(map[string][]string, len(d.codes))}
	for k, v := range d.codes {
		c.codes[k] = slices.Clone(v)
	}
	return c
}

// event applies a mode or quarantine event.
func (d *devices) event(e telemetry.Event) {
	switch e.Kind {
	case telemetry.EventMode:
		switch m := e.Attrs["state"]; {
		case m == telemetry.ModeNormal:
			delete(d.mode, e.Device)
		case telemetry.ValidMode(m):
			d.mode[e.Device] = m
		}
		// A state this gateway does not know leaves the mode as it was.
	case telemetry.EventQuarantine:
		switch e.Attrs["state"] {
		case "quarantined":
			d.down[e.Device] = e.Time
		case "released":
			delete(d.down, e.Device)
		}
	}
}

// reading notes a reading of device: it answered, so the gateway's link to
// it works whatever the quarantine events said (after a gateway restart the
// poller starts afresh and does not release a device the note still has
// quarantined).
func (d *devices) reading(device string) {
	delete(d.down, device)
}

// learn notes that device's readings map to code.
func (d *devices) learn(device, code string) {
	cs := d.codes[device]
	if i, found := slices.BinarySearch(cs, code); !found {
		d.codes[device] = slices.Insert(cs, i, code)
	}
}

// flag is a reading's data flag (HJ 212-2017 table 8): the device's mode
// first (stopped F, maintenance M, calibration C: what the instrument was
// doing makes the value what it is), then the reading's quality: good N;
// bad above the instrument's range T when over says so; else D.
func (d *devices) flag(r telemetry.Reading, over func(telemetry.Reading) bool) string {
	switch d.mode[r.Device] {
	case telemetry.ModeStopped:
		return hj212.DataStopped
	case telemetry.ModeMaintenance:
		return hj212.DataMaintenance
	case telemetry.ModeCalibration:
		return hj212.DataCalibration
	}
	if r.Quality == telemetry.Good {
		return hj212.DataNormal
	}
	if r.Quality == telemetry.Bad && over != nil && over(r) {
		return hj212.DataOverRange
	}
	return hj212.DataFault
}

// downCodes are the factor codes of the quarantined devices, sorted.
func (d *devices) downCodes() []string {
	var out []string
	for dev := range d.down {
		out = append(out, d.codes[dev]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// marshal writes the state as lines of the consumer's note:
//
//	mode <device> <mode>
//	down <device> <since, RFC 3339>
//	codes <device> <code>,<code>…
//
// in a fixed order, so an unchanged state writes the same bytes.
func (d *devices) marshal() []byte {
	var b bytes.Buffer
	for _, dev := range slices.Sorted(maps.Keys(d.mode)) {
		fmt.Fprintf(&b, "mode %s %s\n", dev, d.mode[dev])
	}
	for _, dev := range slices.Sorted(maps.Keys(d.down)) {
		fmt.Fprintf(&b, "down %s %s\n", dev, d.down[dev].UTC().Format(time.RFC3339Nano))
	}
	for _, dev := range slices.Sorted(maps.Keys(d.codes)) {
		fmt.Fprintf(&b, "codes %s %s\n", dev, strings.Join(d.codes[dev], ","))
	}
	return b.Bytes()
}

// note is a consumer's note: the start of the last aggregate period the
// platform confirmed (aggregate kinds; a line of its own in RFC 3339, as
// the first version wrote it) and the devices' state at the cursor.
type note struct {
	period time.Time
	state  *devices
}

func (n note) marshal() []byte {
	var b []byte
	if !n.period.IsZero() {
		b = append(b, n.period.UTC().Format(time.RFC3339)+"\n"...)
	}
	return append(b, n.state.marshal()...)
}

// parseNote reads a note back. Lines it does not understand are reported
// in bad and skipped: a note is a convenience, a lost line costs the
// flags of the items up to the device's next event, never the data.
func parseNote(data []byte) (n note, bad []string) {
	n.state = newDevices()
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		ok := false
		switch {
		case len(f) == 1:
			t, err := time.Parse(time.RFC3339, f[0])
			n.period, ok = t, err == nil
		case len(f) != 3 || telemetry.CheckName("device", f[1]) != nil:
		case f[0] == "mode":
			if ok = telemetry.ValidMode(f[2]); ok && f[2] != telemetry.ModeNormal {
				n.state.mode[f[1]] = f[2]
			}
		case f[0] == "down":
			t, err := time.Parse(time.RFC3339Nano, f[2])
			if ok = err == nil; ok {
				n.state.down[f[1]] = t
			}
		case f[0] == "codes":
			ok = true
			for _, c := range strings.Split(f[2], ",") {
				if !factorCode(c) {
					ok = false
					break
				}
				n.state.learn(f[1], c)
			}
		}
		if !ok {
			bad = append(bad, line)
		}
	}
	return n, bad
}

// factorCode reports whether c is a letter and 5 digits.
func factorCode(c string) bool {
	if len(c) != 6 || c[0] < 'a' || c[0] > 'z' {
		return false
	}
	for i := 1; i < 6; i++ {
		if c[i] < '0' || c[i] > '9' {
			return false
		}
	}
	return true
}
