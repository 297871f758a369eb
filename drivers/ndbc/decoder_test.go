package ndbc

import (
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/stream"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

const (
	hdrNames = "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS PTDY  TIDE\n"
	hdrUnits = "#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC  nmi  hPa    ft\n"
	header   = hdrNames + hdrUnits
	// sampleRow is the sample row of the reference (protocols.md §2.3).
	sampleRow = "2014 09 11 16 50 120  5.0  6.0   0.6     6   4.2 134 1016.5  29.3  30.5  24.4   MM +0.3    MM\n"
)

// now is the arrival time of the tests' polls.
var now = time.Date(2026, 9, 26, 0, 20, 0, 0, time.UTC)

func checkOutput(t testing.TB, out stream.Output) {
	t.Helper()
	for _, r := range out.Readings {
		if err := r.Validate(); err != nil {
			t.Fatalf("invalid reading %+v: %v", r, err)
		}
	}
}

// byTime groups readings by row time, as metric → value.
func byTime(rs []telemetry.Reading) map[time.Time]map[string]float64 {
	m := map[time.Time]map[string]float64{}
	for _, r := range rs {
		if m[r.Time] == nil {
			m[r.Time] = map[string]float64{}
		}
		m[r.Time][r.Metric] = r.Value
	}
	return m
}

func TestSampleRow(t *testing.T) {
	d := New(Config{}, "ndbc41010")
	out := d.Feed([]byte(header+sampleRow), now)
	checkOutput(t, out)
	at := time.Date(2014, 9, 11, 16, 50, 0, 0, time.UTC)
	want := map[string]float64{
		"wind_direction": 120, "wind_speed": 5, "wind_gust": 6, "wave_height": 0.6, "wave_period_peak": 6,
		"wave_period": 4.2, "wave_direction": 134, "air_pressure": 1016.5, "air_temperature": 29.3,
		"water_temperature": 30.5, "dew_point": 24.4, "pressure_tendency": 0.3,
	}
	if got := byTime(out.Readings); len(got) != 1 || !reflect.DeepEqual(got[at], want) {
		t.Fatalf("got %v, want %v at %v", got, want, at)
	}
	units := map[string]string{"wind_direction": "°", "wind_speed": "m/s", "wind_gust": "m/s", "wave_height": "m",
		"wave_period_peak": "s", "wave_period": "s", "wave_direction": "°", "air_pressure": "hPa", "air_temperature": "°C",
		"water_temperature": "°C", "dew_point": "°C", "pressure_tendency": "hPa"}
	for _, r := range out.Readings {
		if r.Unit != units[r.Metric] || r.Device != "ndbc41010" || r.Quality != telemetry.Good || r.Clock != telemetry.ClockUnknown {
			t.Errorf("%+v", r)
		}
	}
	if st := d.Stats(); st.Frames != 1 || len(st.Errors) != 0 || !st.LastFrame.Equal(now) {
		t.Fatalf("stats %+v", st)
	}
}

// TestRecorded decodes a real realtime2 file of buoy 41010 and checks a few
// values against the text by hand.
func TestRecorded(t *testing.T) {
	doc, err := os.ReadFile("testdata/41010.txt")
	if err != nil {
		t.Fatal(err)
	}
	d := New(Config{}, "ndbc41010")
	out := d.Feed(doc, now)
	checkOutput(t, out)
	st := d.Stats()
	if st.Frames != 38 || len(st.Errors) != 0 || len(out.Readings) != 340 {
		t.Fatalf("%d rows, errors %v, %d readings; want 38, none, 340", st.Frames, st.Errors, len(out.Readings))
	}
	rows := byTime(out.Readings)
	at := func(d, h, m int) time.Time { return time.Date(2026, 9, d, h, m, 0, 0, time.UTC) }
	checks := []struct {
		at   time.Time
		want map[string]float64
	}{
		// 2026 09 26 00 00  20  9.0 11.0 MM MM MM MM 1012.0 27.1 MM 22.1 MM +0.5 MM
		{at(26, 0, 0), map[string]float64{"wind_direction": 20, "wind_speed": 9, "wind_gust": 11, "air_pressure": 1012,
			"air_temperature": 27.1, "dew_point": 22.1, "pressure_tendency": 0.5}},
		// 2026 09 25 18 50 360  8.0 10.0 3.4 12 9.0 24 1011.5 27.1 29.8 22.7 MM MM MM
		{at(25, 18, 50), map[string]float64{"wind_direction": 360, "wind_speed": 8, "wind_gust": 10, "wave_height": 3.4,
			"wave_period_peak": 12, "wave_period": 9, "wave_direction": 24, "air_pressure": 1011.5, "air_temperature": 27.1,
			"water_temperature": 29.8, "dew_point": 22.7}},
		// 2026 09 25 19 10  10  8.0 10.0 MM MM MM MM 1011.4 MM 29.8 MM MM MM MM
		{at(25, 19, 10), map[string]float64{"wind_direction": 10, "wind_speed": 8, "wind_gust": 10, "air_pressure": 1011.4,
			"water_temperature": 29.8}},
		// 2026 09 25 21 00 … -0.7
		{at(25, 21, 0), map[string]float64{"wind_direction": 20, "wind_speed": 7, "wind_gust": 10, "air_pressure": 1011.4,
			"air_temperature": 27.1, "water_temperature": 29.8, "dew_point": 21.5, "pressure_tendency": -0.7}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(rows[c.at], c.want) {
			t.Errorf("%v: %v, want %v", c.at, rows[c.at], c.want)
		}
	}
	// The next poll re-reads the same file: nothing new.
	d.Start(now.Add(10 * time.Minute))
	if out := d.Feed(doc, now.Add(10*time.Minute)); len(out.Readings) != 0 {
		t.Fatalf("re-read gave %d readings", len(out.Readings))
	}
	// A poll with two new rows on top gives just those.
	newer := "2026 09 26 00 30  30 10.0 12.0    MM    MM    MM  MM 1012.5  27.0  29.8  22.0   MM   MM    MM\n" +
		"2026 09 26 00 20  20  9.0 12.0   3.6    13   8.9  21 1012.4  27.1  29.8  22.1   MM   MM    MM\n"
	doc2 := string(doc[:len(header)]) + newer + string(doc[len(header):])
	d.Start(now.Add(20 * time.Minute))
	out = d.Feed([]byte(doc2), now.Add(20*time.Minute))
	if got := byTime(out.Readings); len(got) != 2 || len(got[at(26, 0, 30)]) != 7 || len(got[at(26, 0, 20)]) != 11 {
		t.Fatalf("new rows: %v", got)
	}
}

// TestChunks feeds documents in every two-part split and in small chunks:
// the output does not depend on the split.
func TestChunks(t *testing.T) {
	doc := header + sampleRow + "2014 09 11 16 40 110  4.0  5.0   MM    MM   MM  MM 1016.4  29.2  30.5  24.4   MM   MM    1.0\n" +
		"2014 09 11 16 30 xx  4.0\n"
	ref := New(Config{}, "b")
	want := ref.Feed([]byte(doc), now)
	wantStats := ref.Stats()
	if len(want.Readings) != 12+8 || wantStats.Errors[KindColumns] != 1 {
		t.Fatalf("reference: %d readings, %v", len(want.Readings), wantStats)
	}
	for i := 0; i <= len(doc); i++ {
		d := New(Config{}, "b")
		got := d.Feed([]byte(doc[:i]), now)
		got.Add(d.Feed([]byte(doc[i:]), now))
		if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(d.Stats(), wantStats) {
			t.Fatalf("split at %d: %d readings %v", i, len(got.Readings), d.Stats())
		}
	}
	full, _ := os.ReadFile("testdata/41010.txt")
	for _, n := range []int{1, 7, 64, 4096} {
		d := New(Config{}, "b")
		var got stream.Output
		for off := 0; off < len(full); off += n {
			got.Add(d.Feed(full[off:min(off+n, len(full))], now))
		}
		if len(got.Readings) != 340 {
			t.Fatalf("chunks of %d: %d readings", n, len(got.Readings))
		}
	}
}

// TestDocuments checks header validation and bad rows.
func TestDocuments(t *testing.T) {
	tide1 := "2014 09 11 16 40 110  4.0  5.0   MM    MM   MM  MM 1016.4  29.2  30.5  24.4  1.5   MM    1.0\n"
	tests := []struct {
		name     string
		cfg      Config
		doc      string
		rows     uint64
		errs     map[string]uint64
		readings int
	}{
		{name: "sample", doc: header + sampleRow, rows: 1, readings: 12},
		{name: "CRLF and blank lines", doc: strings.ReplaceAll(header+"\n"+sampleRow, "\n", "\r\n"), rows: 1, readings: 12},
		{name: "unknown column refuses the document", doc: strings.Replace(header, "WSPD", "WSPX", 1) + sampleRow + sampleRow,
			errs: map[string]uint64{KindHeader: 1}},
		{name: "repeated column", doc: strings.Replace(header, "WSPD", "WDIR", 1) + sampleRow, errs: map[string]uint64{KindHeader: 1}},
		{name: "time columns out of order", doc: strings.Replace(header, "MM DD", "DD MM", 1) + sampleRow, errs: map[string]uint64{KindHeader: 1}},
		{name: "wrong unit", doc: hdrNames + strings.Replace(hdrUnits, "ft", "m ", 1) + sampleRow, errs: map[string]uint64{KindHeader: 1}},
		{name: "units line missing", doc: hdrNames + sampleRow + sampleRow, errs: map[string]uint64{KindHeader: 1}},
		{name: "rows without header", doc: sampleRow + sampleRow, errs: map[string]uint64{KindNoHeader: 1}},
		{name: "older layout without PTDY, VIS in statute miles",
			doc: "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS  TIDE\n" +
				"#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC   mi    ft\n" +
				"2014 09 11 16 40 110  4.0  5.0   MM    MM   MM  MM 1016.4  29.2  30.5  24.4  1.5    1.0\n",
			rows: 1, readings: 9},
		{name: "tide and visibility", doc: header + tide1, rows: 1, readings: 9},
		{name: "wrong column count", doc: header + "2014 09 11 16 50 120  5.0\n" + sampleRow, rows: 1, errs: map[string]uint64{KindColumns: 1}, readings: 12},
		{name: "unparsable number", doc: header + strings.Replace(sampleRow, "1016.5", "1O16.5", 1) + tide1, rows: 1,
			errs: map[string]uint64{KindNumber: 1}, readings: 9},
		{name: "NaN is not a number", doc: header + strings.Replace(sampleRow, "1016.5", "NaN", 1), errs: map[string]uint64{KindNumber: 1}},
		{name: "impossible date", doc: header + strings.Replace(sampleRow, "2014 09 11", "2014 02 30", 1), errs: map[string]uint64{KindDate: 1}},
		{name: "hour 24", doc: header + strings.Replace(sampleRow, "16 50", "24 50", 1), errs: map[string]uint64{KindDate: 1}},
		{name: "future date", doc: header + strings.Replace(sampleRow, "2014", "2027", 1), errs: map[string]uint64{KindDate: 1}},
		{name: "columns allow-list", cfg: Config{Columns: []string{"wspd", "TIDE"}}, doc: header + tide1, rows: 1, readings: 2},
		{name: "backfill", cfg: Config{Backfill: 24 * time.Hour}, doc: header + "2026 09 25 01 00 110  4.0  5.0 MM MM MM MM 1016.4 MM MM MM MM MM MM\n" + sampleRow,
			rows: 1, readings: 4},
		{name: "overlong line", doc: header + strings.Repeat("9", 2000) + "\n" + sampleRow, rows: 1, errs: map[string]uint64{KindOverlong: 1}, readings: 12},
		{name: "stray comment", doc: header + "# hello\n" + sampleRow, errs: map[string]uint64{KindHeader: 1}},
		{name: "second document in the same feed", doc: header + sampleRow + header + sampleRow + tide1, rows: 1, readings: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Normalize()
			if bad := tt.cfg.Check(); len(bad) > 0 {
				t.Fatal(bad)
			}
			d := New(tt.cfg, "b")
			out := d.Feed([]byte(tt.doc), now)
			checkOutput(t, out)
			st := d.Stats()
			errs := st.Errors
			if errs == nil {
				errs = map[string]uint64{}
			}
			if tt.errs == nil {
				tt.errs = map[string]uint64{}
			}
			if st.Frames != tt.rows || !maps.Equal(errs, tt.errs) || len(out.Readings) != tt.readings {
				t.Fatalf("rows %d errors %v readings %d, want %d %v %d", st.Frames, st.Errors, len(out.Readings), tt.rows, tt.errs, tt.readings)
			}
		})
	}
}

// TestConversions checks the tide in metres and the visibility in nmi.
func TestConversions(t *testing.T) {
	doc := "#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES  ATMP  WTMP  DEWP  VIS  TIDE\n" +
		"#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa  degC  degC  degC   mi    ft\n" +
		"2014 09 11 16 40 110  4.0 99.0   MM    MM   MM  MM 9999.0  29.2  30.5  24.4  1.0   -2.5\n"
	d := New(Config{}, "b")
	out := d.Feed([]byte(doc), now)
	checkOutput(t, out)
	got := map[string]telemetry.Reading{}
	for _, r := range out.Readings {
		got[r.Metric] = r
	}
	if r := got["tide"]; r.Value != -0.762 || r.Unit != "m" {
		t.Errorf("tide %+v", r)
	}
	if r := got["visibility"]; math.Abs(r.Value-0.868976) > 1e-6 || r.Unit != "nmi" {
		t.Errorf("visibility %+v", r)
	}
	// The 9-filled values of historical files are kept, as Bad.
	if got["air_pressure"].Quality != telemetry.Bad || got["wind_gust"].Quality != telemetry.Good || got["wind_speed"].Quality != telemetry.Good {
		t.Errorf("qualities %v %v", got["air_pressure"], got["wind_gust"])
	}
}

// TestStartCutsLine reopens in the middle of a row.
func TestStartCutsLine(t *testing.T) {
	d := New(Config{}, "b")
	d.Feed([]byte(header+sampleRow[:20]), now)
	d.Start(now)
	out := d.Feed([]byte(sampleRow[20:]+header+sampleRow), now)
	st := d.Stats()
	if st.Errors[KindCut] != 1 || st.Errors[KindNoHeader] != 1 || len(out.Readings) != 12 {
		t.Fatalf("stats %v, %d readings", st, len(out.Readings))
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1016.5", 1016.5, true}, {"+0.3", 0.3, true}, {"-0.7", -0.7, true}, {"14", 14, true}, {".5", 0.5, true},
		{"5.", 5, true}, {"0.1", 0.1, true}, {"0.0000000000001", 1e-13, true}, {"123456789012345", 123456789012345, true},
		{"", 0, false}, {".", 0, false}, {"-", 0, false}, {"1e5", 0, false}, {"NaN", 0, false}, {"Inf", 0, false},
		{"0x10", 0, false}, {"1.2.3", 0, false}, {"--1", 0, false}, {"1234567890123456", 0, false}, {"MM", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDecimal([]byte(tt.in))
		if ok != tt.ok || got != tt.want {
			t.Errorf("%q: %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	// Agrees with strconv on many values.
	for i := -20000; i <= 20000; i += 7 {
		s := fmt.Sprintf("%.2f", float64(i)/100)
		var want float64
		fmt.Sscan(s, &want)
		if got, ok := parseDecimal([]byte(s)); !ok || got != want {
			t.Fatalf("%s: %v", s, got)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	c := Config{Columns: []string{"wspd", "XXX"}, Backfill: -time.Second}
	c.Normalize()
	bad := c.Check()
	if len(bad) != 2 || bad["columns"] == "" || bad["backfill"] == "" {
		t.Fatalf("%v", bad)
	}
}
