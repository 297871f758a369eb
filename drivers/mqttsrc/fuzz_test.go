package mqttsrc

import (
	"testing"
	"time"
)

// fuzzMappings are applied to every fuzzed message: the ChirpStack soil
// profile's, and one taking everything it can from the topic and strings.
func fuzzMappings(t testing.TB) []*Mapper {
	chirp := Mapping{
		Device: "deviceInfo.devEui", Time: "time", TimeClock: "ntp",
		Filter: map[string]string{"fPort": "2"},
		Fields: []Field{
			{Path: "object.water_SOIL", Metric: "soil_moisture", Unit: "%", Range: []float64{0, 100}},
			{Path: "object.temp_SOIL", Metric: "soil_temperature", Unit: "°C", Range: []float64{-40, 85}},
			{Path: "object.conduct_SOIL", Metric: "soil_ec", Unit: "µS/cm", Range: []float64{0, 20000}},
			{Path: "object.BatV", Metric: "battery", Unit: "V"},
			{Path: "rxInfo.0.rssi", Metric: "rssi", Unit: "dBm"},
			{Path: "rxInfo.0.snr", Metric: "snr", Unit: "dB", Scale: 1e300, Offset: -5},
		},
	}
	loose := Mapping{
		Device: "topic:1", Time: "ts", TimeFormat: TimeUnixMS,
		Filter: map[string]string{"topic:0": "n"},
		Fields: []Field{
			{Path: ".", Metric: "whole"},
			{Path: "0", Metric: "first", Scale: 0.01},
			{Path: "a.b.1", Metric: "deep", Offset: 1e308},
			{Path: "s", Metric: "s", Scale: -1e-3},
		},
	}
	named := Mapping{Device: "name", Time: "t", TimeFormat: TimeUnixS, Fields: []Field{{Path: "v", Metric: "v"}}}
	var out []*Mapper
	for _, m := range []Mapping{chirp, loose, named} {
		m.Normalize()
		if bad := m.Check(); len(bad) > 0 {
			t.Fatalf("fuzz mapping: %v", bad)
		}
		out = append(out, NewMapper(m, gatewayClock))
	}
	return out
}

// FuzzMap feeds arbitrary topics and payloads to Map: it must not panic,
// and every reading must pass Validate.
func FuzzMap(f *testing.F) {
	for _, name := range []string{"chirpstack/docs-up.json", "chirpstack/iobroker-dragino-up.json", "chirpstack/lse01-up.json"} {
		f.Add("application/x/device/0101010101010101/event/up", []byte(readFile(f, name)))
	}
	f.Add("n/Node-7", []byte(`{"ts":1700000000123,"0":1,"a":{"b":[0,"2.5"]},"s":"-1e2"}`))
	f.Add("n/x", []byte(`[12.5, true]`))
	f.Add("n/é", []byte(`"1e308"`))
	f.Add("", []byte(`{"name":"\ud800","t":"1e3","v":null}`))
	f.Add("n//", []byte(`{"fPort":2,"deviceInfo":{"devEui":"--"},"time":"2024-02-30T00:00:00Z"}`))
	mappers := fuzzMappings(f)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		for _, mp := range mappers {
			out := mp.Map(topic, payload, now)
			for _, r := range out.Readings {
				if err := r.Validate(); err != nil {
					t.Fatalf("invalid reading %+v: %v", r, err)
				}
			}
		}
	})
}
