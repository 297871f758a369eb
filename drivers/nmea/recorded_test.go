package nmea

import (
	"bufio"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recordedLine is one line of a recorded file and what decoding it gave.
type recordedLine struct {
	text     string
	values   map[string]float64
	accepted uint64
	refused  map[string]uint64
}

// decodeRecorded decodes a recorded file line by line, each line fed with
// CR LF as a device sends it, and returns per-line results and the totals.
func decodeRecorded(t *testing.T, path string) ([]recordedLine, map[string]uint64, uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := New(Config{}, "recorded", nil)
	var lines []recordedLine
	sc := bufio.NewScanner(f)
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for sc.Scan() {
		before := d.Stats()
		at = at.Add(100 * time.Millisecond)
		out := d.Feed([]byte(sc.Text()+"\r\n"), at)
		checkOutput(t, out)
		after := d.Stats()
		refused := map[string]uint64{}
		for k, v := range after.Errors {
			if dv := v - before.Errors[k]; dv > 0 {
				refused[k] = dv
			}
		}
		lines = append(lines, recordedLine{sc.Text(), values(out.Readings), after.Frames - before.Frames, refused})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	return lines, errorsOf(st), st.Frames
}

// TestRecorded decodes real recordings end to end: every line yields
// readings or is counted under a refusal kind, every recorded checksum
// verifies, and the totals per file are as checked by hand.
func TestRecorded(t *testing.T) {
	tests := []struct {
		file   string
		frames uint64
		errs   map[string]uint64
	}{
		// 8 blocks of 16 sentences: VHW, MWV, DBT, MWD decode; HDT ×2 and ZDA
		// (time only) are empty; VPW VTG VWT WCV XTE GLL GSV HDM VDR unknown.
		{"signalk-plaka.nmea", 32, map[string]uint64{KindUnknownSentence: 72, KindEmpty: 24}},
		// DBT DPT GGA MTW MWD RMC VHW ZDA ×3 and MWV ×6 decode; the 3 XDR
		// have 22 fields; AIS ×27, AAM APB BOD GLL GSA RMB VTG XTE ×3,
		// GSV ×9 and HDG ×14 are unknown; each VLW line holds 8 "$": 7
		// truncated frames and a checksum failure.
		{"signalk-gofree-merrimac.nmea", 30, map[string]uint64{KindUnknownSentence: 74, KindMalformed: 3,
			KindTruncated: 3 * 7, KindChecksum: 3}},
		// MWV ×21, DBS ×2, DBT ×2 decode; HDG ×19, HDM ×36 unknown.
		{"signalk-n2kd-183-merrimac.nmea", 25, map[string]uint64{KindUnknownSentence: 55}},
		// GGA ×15, RMC ×14 decode; GSA ×15, GSV ×7, VTG ×14 unknown.
		{"signalk-gps.nmea", 29, map[string]uint64{KindUnknownSentence: 36}},
		// The "#" header lines are garbage, one run each.
		{"gpsd-nmea-rtk.nmea", 24, map[string]uint64{KindGarbage: 9}},
		{"gpsd-nmea-fuzzy-cases.nmea", 14, map[string]uint64{KindGarbage: 8}},
	}
	files, _ := filepath.Glob("testdata/*.nmea")
	if len(files) != len(tests) {
		t.Fatalf("%d recorded files, %d cases", len(files), len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			lines, errs, frames := decodeRecorded(t, filepath.Join("testdata", tt.file))
			for i, l := range lines {
				if len(l.values) == 0 && len(l.refused) == 0 {
					t.Errorf("line %d %q: no reading and not counted", i+1, l.text)
				}
				if len(l.values) > 0 && l.accepted != 1 {
					t.Errorf("line %d %q: readings but %d frames accepted", i+1, l.text, l.accepted)
				}
				// The only recorded checksums that fail are those of the
				// Navico VLW lines with "$" inside, which split the line.
				if l.refused[KindChecksum] > 0 && !strings.HasPrefix(l.text, "$SDVLW,$") {
					t.Errorf("line %d %q: checksum refused", i+1, l.text)
				}
			}
			if frames != tt.frames || !maps.Equal(errs, tt.errs) {
				t.Errorf("frames %d, errors %v; want %d, %v", frames, errs, tt.frames, tt.errs)
			}
		})
	}
}

// TestRecordedValues checks decoded values against the raw text, worked by
// hand.
func TestRecordedValues(t *testing.T) {
	kn := 1852.0 / 3600
	tests := []struct {
		file string
		line int // 1-based
		want map[string]float64
	}{
		// $IIMWV,338,R,13.41,N,A*2C: apparent wind 13.41 kn
		{"signalk-plaka.nmea", 4, map[string]float64{"wind_direction_relative": 338, "wind_speed_relative": 13.41 * kn}},
		// $IIMWV,313,T,08.16,N,A*2B
		{"signalk-plaka.nmea", 20, map[string]float64{"wind_direction": 313, "wind_speed": 8.16 * kn}},
		// $IIDBT,034.25,f,010.44,M,005.64,F*27: the metres field
		{"signalk-plaka.nmea", 10, map[string]float64{"water_depth": 10.44}},
		// $IIMWD,,,,,08.16,N,04.20,M*54: no direction, speed in m/s preferred over knots
		{"signalk-plaka.nmea", 15, map[string]float64{"wind_speed": 4.20}},
		// $IIVHW,,T,,M,06.11,N,11.31,K*51: no heading, 6.11 kn through the water
		{"signalk-plaka.nmea", 1, map[string]float64{"water_speed": 6.11 * kn}},
		// $GPGGA,195719,5310.8115,N,00525.7025,E,1,00,1.10,-2,M,,M,,*57
		{"signalk-gofree-merrimac.nmea", 11, map[string]float64{"latitude": 53 + 10.8115/60, "longitude": 5 + 25.7025/60,
			"gps_quality": 1, "gps_satellites": 0}},
		// $GPRMC,195719,A,5310.8115,N,00525.7025,E,0.0,0.0,160414,0.7,E,A*10:
		// the fix of line 11's GGA (same UTC and position) is not repeated
		{"signalk-gofree-merrimac.nmea", 17, map[string]float64{"speed_over_ground": 0, "course_over_ground": 0}},
		// $GPZDA,195719,16,04,14,-02,00*63: two-digit year, 2014-04-16T19:57:19Z,
		// arriving at 2024-01-01T00:00:01.9Z (line 19, 100 ms per line)
		{"signalk-gofree-merrimac.nmea", 19, map[string]float64{"clock_offset": time.Date(2014, 4, 16, 19, 57, 19, 0, time.UTC).
			Sub(time.Date(2024, 1, 1, 0, 0, 1, 900e6, time.UTC)).Seconds()}},
		// $SDDPT,0.5,0.5,*7B: 0.5 m below a transducer 0.5 m under the waterline
		{"signalk-gofree-merrimac.nmea", 26, map[string]float64{"water_depth": 1.0}},
		// $SDMTW,12.6,C*01
		{"signalk-gofree-merrimac.nmea", 27, map[string]float64{"water_temperature": 12.6}},
		// $WIMWD,125.3,T,124.6,M,5.6,N,2.9,M*56
		{"signalk-gofree-merrimac.nmea", 31, map[string]float64{"wind_direction": 125.3, "wind_speed": 2.9}},
		// $23DBS,01.9,f,0.58,M,00.3,F*21: below surface as sent
		{"signalk-n2kd-183-merrimac.nmea", 10, map[string]float64{"water_depth": 0.58}},
		// $02MWV,327.6,R,1.89,N*62: no status field
		{"signalk-n2kd-183-merrimac.nmea", 1, map[string]float64{"wind_direction_relative": 327.6, "wind_speed_relative": 1.89 * kn}},
		// $GPGGA,085411.000,5222.3215,N,00454.5778,E,1,4,2.95,16.0,M,47.0,M,,*61
		{"signalk-gps.nmea", 1, map[string]float64{"latitude": 52 + 22.3215/60, "longitude": 4 + 54.5778/60, "gps_quality": 1, "gps_satellites": 4}},
		// $GNGGA,132819.60,4134.49795459,N,09345.03431408,W,2,10,...: west is negative
		{"gpsd-nmea-rtk.nmea", 10, map[string]float64{"latitude": 41 + 34.49795459/60, "longitude": -(93 + 45.03431408/60),
			"gps_quality": 2, "gps_satellites": 10}},
		// $GNGGA,133900.10,...,4,19,...: RTK fixed
		{"gpsd-nmea-fuzzy-cases.nmea", 19, map[string]float64{"latitude": 41 + 34.50180243/60, "longitude": -(93 + 45.03586611/60),
			"gps_quality": 4, "gps_satellites": 19}},
	}
	cache := map[string][]recordedLine{}
	for _, tt := range tests {
		lines, ok := cache[tt.file]
		if !ok {
			lines, _, _ = decodeRecorded(t, filepath.Join("testdata", tt.file))
			cache[tt.file] = lines
		}
		l := lines[tt.line-1]
		got := l.values
		for k, v := range got { // positions: compare to 1e-9 degrees
			if w, ok := tt.want[k]; ok && math.Abs(v-w) < 1e-9 {
				got[k] = w
			}
		}
		if diff := sameValues(got, tt.want); diff != "" {
			t.Errorf("%s:%d %q: %s", tt.file, tt.line, l.text, diff)
		}
	}
}
