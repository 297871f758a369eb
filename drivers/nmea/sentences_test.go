package nmea

import (
	"slices"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

// TestSentences decodes one sentence per case and checks the readings and
// how the sentence was counted: accepted ("") or refused by kind.
func TestSentences(t *testing.T) {
	kn := 1852.0 / 3600
	tests := []struct {
		name      string
		cfg       func(*Config)
		line      string
		want      map[string]float64
		kind      string   // "" when accepted
		bad       []string // metrics expected with quality Bad
		uncertain []string // metrics expected with quality Uncertain
	}{
		// Worked sentences of the reference (protocols.md §2).
		{name: "MTW reference", line: "$INMTW,17.9,C*1B", want: map[string]float64{"water_temperature": 17.9}},
		{name: "MWV reference", line: "$WIMWV,12.1,T,10.1,N,A*27",
			want: map[string]float64{"wind_direction": 12.1, "wind_speed": 10.1 * kn}},
		{name: "MWD reference", line: "$WIMWD,10.1,T,10.1,M,12,N,40,M*5D",
			want: map[string]float64{"wind_direction": 10.1, "wind_speed": 40}, bad: nil},
		{name: "MTA reference", line: "$IIMTA,13.3,C*04", want: map[string]float64{"air_temperature": 13.3}},
		{name: "XDR reference (Gill GMX)", line: "$WIXDR,H,092,P,RH,C,014.1,C,TEMP,P,1.025,B,PRESS,C,009.9,C,DP*08",
			want: map[string]float64{"air_humidity": 92, "air_temperature": 14.1, "air_pressure": 1025, "dew_point": 9.9}},
		{name: "DPT reference", line: "$INDPT,2.3,0.0*46", want: map[string]float64{"water_depth": 2.3}},
		// 20 years (7305 days) before t0, 0.71 s later in the day.
		{name: "ZDA reference", line: "$GPZDA,160012.71,11,03,2004,-1,00*7D",
			want: map[string]float64{"clock_offset": -631151999.29}},
		// Quirks.
		{name: "MWD without the knots pair", line: "$IIMWD,297.9,T,309.0,M,3.2,M*2A",
			want: map[string]float64{"wind_direction": 297.9, "wind_speed": 3.2}},
		{name: "MWD knots only", line: "$WIMWD,10.1,T,10.1,M,12,N,,M*59",
			want: map[string]float64{"wind_direction": 10.1, "wind_speed": 12 * kn}},
		{name: "Gill MWV gust", line: "$WIMWV,322.0,G,09.22,N,A*3C", want: map[string]float64{"wind_gust": 9.22 * kn}},
		{name: "MWV without status (NMEA 1.5, n2kd)", line: "$02MWV,327.6,R,1.89,N*62",
			want: map[string]float64{"wind_direction_relative": 327.6, "wind_speed_relative": 1.89 * kn}},
		{name: "MWV km/h", line: "$WIMWV,350.0,R,16.8,K,A*1F",
			want: map[string]float64{"wind_direction_relative": 350, "wind_speed_relative": 16.8 / 3.6}},
		{name: "MWV status V", line: "$WIMWV,,R,,N,V*34", kind: KindInvalidStatus},
		{name: "MWV NaN angle", line: "$WIMWV,NaN,T,5.0,N,A*6F", kind: KindMalformed},
		{name: "MWV speed without unit", line: "$WIMWV,350.0,R,16.8,,A*54", kind: KindMalformed},
		{name: "MWV unknown reference", line: "$WIMWV,12.1,X,10.1,N,A*2B", kind: KindMalformed},
		{name: "MWV T left out", cfg: func(c *Config) { c.MWVReference = "R" },
			line: "$WIMWV,12.1,T,10.1,N,A*27", kind: KindIgnored},
		{name: "MWV R left out", cfg: func(c *Config) { c.MWVReference = "T" },
			line: "$WIMWV,350.0,R,16.8,K,A*1F", kind: KindIgnored},
		{name: "MDA blank water temperature", line: "$IIMDA,30.0615,I,1.0180,B,23.6,C,,,25.3,,2.5,C,,,,,,,,*50",
			want: map[string]float64{"air_pressure": 1018, "air_temperature": 23.6, "air_humidity": 25.3, "dew_point": 2.5}},
		{name: "MDA inHg only, knots only", line: "$WIMDA,29.8430,I,,B,22.0,C,18.5,C,78.3,,18.0,C,260.3,T,249.9,M,1.8,N,,M*01",
			want: map[string]float64{"air_pressure": 29.843 * 33.8639, "air_temperature": 22, "water_temperature": 18.5,
				"air_humidity": 78.3, "dew_point": 18, "wind_direction": 260.3, "wind_speed": 1.8 * kn}},
		{name: "MDA all empty", line: "$WIMDA,,I,,B,,C,,C,,,,C,,T,,M,,N,,M*04", kind: KindEmpty},
		{name: "MTW negative, YX talker", line: "$YXMTW,-1.5,C*0B", want: map[string]float64{"water_temperature": -1.5}},
		{name: "MTW implausible is bad", line: "$WIMTW,99.0,C*0D", want: map[string]float64{"water_temperature": 99}, bad: []string{"water_temperature"}},
		{name: "MTA empty", line: "$IIMTA,,C*1B", kind: KindEmpty},
		{name: "VHW km/h only", line: "$IIVHW,187.9,T,,,,N,36.3,K*29", want: map[string]float64{"heading": 187.9, "water_speed": 36.3 / 3.6}},
		{name: "VHW knots, no heading (plaka)", line: "$IIVHW,,T,,M,06.11,N,11.31,K*51", want: map[string]float64{"water_speed": 6.11 * kn}},
		{name: "HDT", line: "$HEHDT,274.1,T*2F", want: map[string]float64{"heading": 274.1}},
		{name: "HDT empty (plaka)", line: "$IIHDT,,T*0C", kind: KindEmpty},
		{name: "DPT positive offset", line: "$SDDPT,0.5,0.5,*7B", want: map[string]float64{"water_depth": 1.0}},
		{name: "DPT keel offset uses transducer depth", cfg: func(c *Config) { c.TransducerDepth = 0.4 },
			line: "$SDDPT,12.5,-1.2*4F", want: map[string]float64{"water_depth": 12.9}},
		{name: "DPT empty offset", line: "$SDDPT,12.5,*4F", want: map[string]float64{"water_depth": 12.5}},
		{name: "DBT metres plus transducer depth", cfg: func(c *Config) { c.TransducerDepth = 0.5 },
			line: "$SDDBT,1.8,f,0.5,M,0.3,F*09", want: map[string]float64{"water_depth": 1.0}},
		{name: "DBT fathoms only", line: "$SDDBT,,f,,M,3.0,F*05", want: map[string]float64{"water_depth": 3 * 1.8288}},
		{name: "DBS", line: "$SDDBS,,,0187.5,M,,*1A", want: map[string]float64{"water_depth": 187.5}},
		{name: "GGA no fix", line: "$GPGGA,,,,,,0,00,99.99,,,,,,*48", want: map[string]float64{"gps_quality": 0, "gps_satellites": 0}},
		{name: "GGA estimated is uncertain", line: "$GPGGA,123519,4807.038,N,01131.000,E,6,08,0.9,545.4,M,46.9,M,,*40",
			want:      map[string]float64{"gps_quality": 6, "gps_satellites": 8, "latitude": 48.1173, "longitude": 11.516666666666667},
			uncertain: []string{"latitude", "longitude"}},
		{name: "RMC", line: "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A",
			want: map[string]float64{"latitude": 48.1173, "longitude": 11.516666666666667, "speed_over_ground": 22.4 * kn, "course_over_ground": 84.4}},
		{name: "RMC mode N", line: "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W,N*08", kind: KindInvalidStatus},
		{name: "RMC status V", line: "$GPRMC,,V,,,,,,,,,,N*53", kind: KindInvalidStatus},
		{name: "RMC NaN speed", line: "$GPRMC,123519,A,4807.038,N,01131.000,E,NaN,084.4,230394,003.1,W*21", kind: KindMalformed},
		{name: "ZDA 31 February", line: "$GPZDA,160012.71,31,02,2004,00,00*62", kind: KindMalformed},
		{name: "ZDA leap second", line: "$GPZDA,235960.50,31,12,2016,00,00*6C",
			want: map[string]float64{"clock_offset": time.Date(2017, 1, 1, 0, 0, 0, 500e6, time.UTC).Sub(t0).Seconds()}},
		{name: "ZDA gateway clock 4 h 0 m 12 s ahead", line: "$GPZDA,120000,11,03,2024,00,00*4C",
			want: map[string]float64{"clock_offset": -4*3600 - 12}},
		{name: "ZDA time only (plaka)", line: "$GPZDA,095559,,,,00,*4D", kind: KindEmpty},
		{name: "MWH", line: "$IIMWH,6.6,f,2.0,M*7B", want: map[string]float64{"wave_height": 2.0}},
		{name: "MWH empty", line: "$IIMWH,,f,,M*79", kind: KindEmpty},
		{name: "PNORW, -9 invalid", line: "$PNORW,120720,093150,0,1,0.89,-9.00,1.13,1.49,1.41,1.03,-9.00,190.03,80.67,113.52,0.54,0.00,1024,0,1.19,144.11,0000*71",
			want: map[string]float64{"wave_height": 0.89, "wave_height_max": 1.49, "wave_period": 1.41, "wave_period_peak": 1.03, "wave_direction": 190.03}},
		{name: "PNORW error code is uncertain", line: withChecksum("$PNORW,120720,093150,0,1,0.89,-9.00,1.13,1.49,1.41,1.03,-9.00,190.03,80.67,113.52,0.54,0.00,1024,0,1.19,144.11,0D8B"),
			want:      map[string]float64{"wave_height": 0.89, "wave_height_max": 1.49, "wave_period": 1.41, "wave_period_peak": 1.03, "wave_direction": 190.03},
			uncertain: []string{"wave_height", "wave_height_max", "wave_period", "wave_period_peak", "wave_direction"}},
		{name: "PNORW old 6-field form", line: "$PNORW,102115,090715,2.50,4.10,8.5,280.0*5D",
			want: map[string]float64{"wave_height": 2.5, "wave_height_max": 4.1, "wave_period_peak": 8.5, "wave_direction": 280}},
		{name: "PNORW reference checksum does not verify", line: "$PNORW,120720,093150,0,1,0.89,-9.00,1.13,1.49,1.41,1.03,-9.00,190.03,80.67,113.52,0.54,0.00,1024,0,1.19,144.11,0D8B*7B", kind: KindChecksum},
		{name: "XDR mapped but empty", line: "$WIXDR,C,,C,TEMP,H,,P,RH*5E", kind: KindEmpty},
		{name: "XDR unmapped transducer", line: "$IIXDR,A,0.5,D,HEEL*64", kind: KindUnmapped},
		{name: "XDR leading spaces (go-nmea #109)", line: "$IIXDR, C, 12.5, C, AIRTEMP, P, 1.0132, B, BARO*13",
			want: map[string]float64{"air_temperature": 12.5, "air_pressure": 1013.2}},
		{name: "XDR custom mapping", cfg: func(c *Config) {
			c.XDR = []XDRMap{{Type: "A", Name: "heel", Metric: "heel_angle", Unit: "°"}}
		}, line: "$IIXDR,A,0.5,D,HEEL*64", want: map[string]float64{"heel_angle": 0.5}},
		{name: "XDR empty mapping list maps nothing", cfg: func(c *Config) { c.XDR = []XDRMap{} },
			line: "$WIXDR,H,092,P,RH,C,014.1,C,TEMP,P,1.025,B,PRESS,C,009.9,C,DP*08", kind: KindUnmapped},
		{name: "XDR broken field count (Navico, recorded)",
			line: "$IIXDR,C,C,10.7,C,AIRTEMP,A,0.5,D,HEEL,A,-1.-3,D,TRIM,P,1.026,B,BARO,A,A,-4.-3,D,RUDDER*18", kind: KindMalformed},
		// Config filters.
		{name: "sentence left out", cfg: func(c *Config) { c.Sentences = []string{"MDA"} }, line: "$INMTW,17.9,C*1B", kind: KindIgnored},
		{name: "metric allow-list keeps some", cfg: func(c *Config) { c.Metrics = []string{"wind_speed"} },
			line: "$WIMWV,12.1,T,10.1,N,A*27", want: map[string]float64{"wind_speed": 10.1 * kn}},
		{name: "metric allow-list drops all", cfg: func(c *Config) { c.Metrics = []string{"wave_height"} },
			line: "$INMTW,17.9,C*1B", kind: KindIgnored},
		// Not ours.
		{name: "GSV is not mapped", line: "$GPGSV,3,3,10,29,69,069,,31,54,240,*76", kind: KindUnknownSentence},
		{name: "AIS is not mapped", line: "!AIVDM,1,1,1,,13aI8e?P00PGpU:NR6s00?vT2000,0,0*1C", kind: KindUnknownSentence},
		{name: "other proprietary", line: "$PSTMCPU,54.57,-1,98*40", kind: KindUnknownSentence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			cfg.Normalize()
			if bad := cfg.Check(); len(bad) > 0 {
				t.Fatalf("config: %v", bad)
			}
			d := New(cfg, "buoy1", gpsClock)
			out := feedAll(t, d, tt.line+"\r\n")
			st := d.Stats()
			if tt.kind == "" {
				if st.Frames != 1 || len(st.Errors) != 0 {
					t.Fatalf("stats %+v, want one accepted frame", st)
				}
			} else if st.Frames != 0 || st.Errors[tt.kind] != 1 || len(st.Errors) != 1 {
				t.Fatalf("stats %+v, want one %s", st, tt.kind)
			}
			if diff := sameValues(values(out.Readings), tt.want); diff != "" {
				t.Fatal(diff)
			}
			for _, r := range out.Readings {
				want := telemetry.Good
				if slices.Contains(tt.bad, r.Metric) {
					want = telemetry.Bad
				} else if slices.Contains(tt.uncertain, r.Metric) {
					want = telemetry.Uncertain
				}
				if r.Quality != want || r.Device != "buoy1" || !r.Time.Equal(t0) || r.Clock != telemetry.ClockGPS {
					t.Errorf("%s: quality %v device %s time %v clock %v, want %v buoy1 %v gps", r.Metric, r.Quality, r.Device, r.Time, r.Clock, want, t0)
				}
			}
		})
	}
}

// TestUnits checks the unit of every metric a sentence gives.
func TestUnits(t *testing.T) {
	d := New(Config{}, "b", nil)
	in := "$WIMDA,29.8430,I,,B,22.0,C,18.5,C,78.3,,18.0,C,260.3,T,249.9,M,1.8,N,,M*01\r\n" +
		"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A\r\n" +
		"$GPGGA,123519,4807.038,N,01131.000,E,6,08,0.9,545.4,M,46.9,M,,*40\r\n" +
		"$PNORW,120720,093150,0,1,0.89,-9.00,1.13,1.49,1.41,1.03,-9.00,190.03,80.67,113.52,0.54,0.00,1024,0,1.19,144.11,0000*71\r\n" +
		"$GPZDA,160012.71,11,03,2004,-1,00*7D\r\n$SDDBS,,,0187.5,M,,*1A\r\n$IIVHW,187.9,T,,,,N,36.3,K*29\r\n"
	want := map[string]string{
		"air_pressure": "hPa", "air_temperature": "°C", "water_temperature": "°C", "air_humidity": "%",
		"dew_point": "°C", "wind_direction": "°", "wind_speed": "m/s", "latitude": "°", "longitude": "°",
		"speed_over_ground": "m/s", "course_over_ground": "°", "gps_quality": "", "gps_satellites": "",
		"wave_height": "m", "wave_height_max": "m", "wave_period": "s", "wave_period_peak": "s",
		"wave_direction": "°", "clock_offset": "s", "water_depth": "m", "heading": "°", "water_speed": "m/s",
	}
	for _, r := range feedAll(t, d, in).Readings {
		if u, ok := want[r.Metric]; !ok || u != r.Unit {
			t.Errorf("%s in %q, want %q", r.Metric, r.Unit, u)
		}
		if err := telemetry.CheckName("metric", r.Metric); err != nil {
			t.Error(err)
		}
	}
}
