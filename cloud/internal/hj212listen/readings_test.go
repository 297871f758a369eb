package hj212listen

import (
	"math"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Frames of HJ 212-2017 appendix C as docs/standards/hj212.md records them
// (with the CRCs a separate implementation computed).
const (
	frameC14 = "##0218QN=20160801085857223;ST=32;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&DataTime=20160801085857;w01001-Rtd=7.1,w01001-Flag=N;w01018-SampleTime=20160801070000,w01018-Rtd=2.2,w01018-Flag=N,w01018-EFlag=A01&&6E80\r\n"
	// answerC14 is the platform's answer printed under C.14.
	answerC14 = "##0087QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&3240\r\n"
	frameC16  = "##0325QN=20160801085000001;ST=32;CN=2051;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&DataTime=20160801084000;w00000-Cou=10.5,w00000-Min=16.4,w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N;w01018-Cou=10.5,w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&6180\r\n"
	frameC50a = "##0260QN=20160801085857534;ST=32;CN=2061;PW=123456;MN=010000A8900016F000169DC0;Flag=7;PNUM=2;PNO=1;CP=&&DataTime=20160801080000;w00000-Cou=63.0,w00000-Min=16.4,w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N;w01001-Min=7.1,w01001-Avg=7.5,w01001-Max=7.8,w01001-Flag=N&&D941\r\n"
	frameC50b = "##0201QN=20160801085857535;ST=32;CN=2061;PW=123456;MN=010000A8900016F000169DC0;Flag=7;PNUM=2;PNO=2;CP=&&DataTime=20160801080000;w01018-Cou=63.0,w01018-Min=40.1,w01018-Avg=40.1,w01018-Max=40.1,w01018-Flag=N&&E2C1\r\n"
	mnC       = "010000A8900016F000169DC0"
)

func defaultFactor(code string) (Factor, bool) { f, ok := DefaultFactors[code]; return f, ok }

// r is a reading of device "d" for the tables below.
func r(metric string, v float64, unit string, t time.Time, q telemetry.Quality) telemetry.Reading {
	return telemetry.Reading{Device: "d", Metric: metric, Value: v, Unit: unit, Time: t, Quality: q}
}

func TestMapUpload(t *testing.T) {
	t0 := time.Date(2016, 8, 1, 0, 58, 57, 0, time.UTC) // 08:58:57 Beijing
	t1 := time.Date(2016, 8, 1, 0, 40, 0, 0, time.UTC)  // 08:40 Beijing, the minute period's start
	rt := func(cp string) string { return "DataTime=20160801085857;" + cp }
	tests := []struct {
		name     string
		cn, cp   string
		want     []telemetry.Reading
		unmapped []string
		kind     string // the refusal's kind, "" for none
	}{
		{name: "C.14 real-time, SampleTime for COD", cn: "2011",
			cp: rt("w01001-Rtd=7.1,w01001-Flag=N;w01018-SampleTime=20160801070000,w01018-Rtd=2.2,w01018-Flag=N,w01018-EFlag=A01"),
			want: []telemetry.Reading{r("water_ph", 7.1, "", t0, telemetry.Good),
				r("cod", 2.2, "mg/L", time.Date(2016, 7, 31, 23, 0, 0, 0, time.UTC), telemetry.Good)}},
		{name: "C.16 minute data: Avg Min Max Cou under suffixed metrics", cn: "2051",
			cp: "DataTime=20160801084000;w00000-Cou=10.5,w00000-Min=16.4,w00000-Avg=17.5,w00000-Max=20.1,w00000-Flag=N",
			want: []telemetry.Reading{r("wastewater_flow_minute_avg", 17.5, "L/s", t1, telemetry.Good),
				r("wastewater_flow_minute_cou", 10.5, "m³", t1, telemetry.Good),
				r("wastewater_flow_minute_max", 20.1, "L/s", t1, telemetry.Good),
				r("wastewater_flow_minute_min", 16.4, "L/s", t1, telemetry.Good)}},
		{name: "hour and day suffixes", cn: "2061", cp: "DataTime=20160801084000;a34004-Avg=35",
			want: []telemetry.Reading{r("pm2_5_hour_avg", 35, "µg/m³", t1, telemetry.Good)}},
		{name: "day", cn: "2031", cp: "DataTime=20160801084000;w21003-Avg=-0.5",
			want: []telemetry.Reading{r("ammonia_nitrogen_day_avg", -0.5, "mg/L", t1, telemetry.Good)}},
		{name: "converted values", cn: "2011", cp: rt("a21026-Rtd=12.5,a21026-ZsRtd=20.0"),
			want: []telemetry.Reading{r("so2", 12.5, "mg/m³", t0, telemetry.Good), r("so2_zs", 20, "mg/m³", t0, telemetry.Good)}},
		{name: "flags", cn: "2011",
			cp: rt("w01009-Rtd=1,w01009-Flag=S;w01010-Rtd=2,w01010-Flag=T;w21003-Rtd=3,w21003-Flag=C;w01014-Rtd=4,w01014-Flag=X;a01001-Rtd=5"),
			want: []telemetry.Reading{r("dissolved_oxygen", 1, "mg/L", t0, telemetry.Uncertain),
				r("water_temperature", 2, "°C", t0, telemetry.Bad), r("ammonia_nitrogen", 3, "mg/L", t0, telemetry.Bad),
				r("water_conductivity", 4, "µS/cm", t0, telemetry.Uncertain), r("air_temperature", 5, "°C", t0, telemetry.Good)}},
		{name: "empty value with a fault flag", cn: "2011", cp: rt("w01018-Rtd=,w01018-Flag=D"),
			want: []telemetry.Reading{r("cod", math.NaN(), "mg/L", t0, telemetry.Bad)}},
		{name: "flags alone: no link to the instrument, stopped", cn: "2011", cp: rt("w01010-Rtd=18.5,w01010-Flag=N;a01006-Flag=B;w01018-Flag=F"),
			want: []telemetry.Reading{r("water_temperature", 18.5, "°C", t0, telemetry.Good),
				r("air_pressure", math.NaN(), "kPa", t0, telemetry.Bad), r("cod", math.NaN(), "mg/L", t0, telemetry.Bad)}},
		{name: "a flag alone in an aggregate", cn: "2051", cp: "DataTime=20160801084000;w01018-Flag=C;w01003-Flag=M",
			want: []telemetry.Reading{r("cod_minute_avg", math.NaN(), "mg/L", t1, telemetry.Bad),
				r("w01003_minute_avg", math.NaN(), "", t1, telemetry.Bad)}, unmapped: []string{"w01003"}},
		{name: "a flag N alone is nothing", cn: "2011", cp: rt("w01018-Flag=N")},
		{name: "maintenance and calibration values", cn: "2051",
			cp: "DataTime=20160801084000;w01018-Cou=0.421,w01018-Avg=40.1,w01018-Flag=M;w00000-Avg=17.5,w00000-Flag=C",
			want: []telemetry.Reading{r("cod_minute_avg", 40.1, "mg/L", t1, telemetry.Bad),
				r("cod_minute_cou", 0.421, "kg", t1, telemetry.Bad), r("wastewater_flow_minute_avg", 17.5, "L/s", t1, telemetry.Bad)}},
		{name: "HJ/T 212-2005 codes", cn: "2011", cp: rt("011-Rtd=2.2;060-Rtd=0.5;02-Rtd=12;B01-Rtd=3.5"),
			want: []telemetry.Reading{r("cod", 2.2, "mg/L", t0, telemetry.Good), r("ammonia_nitrogen", 0.5, "mg/L", t0, telemetry.Good),
				r("so2", 12, "mg/m³", t0, telemetry.Good), r("wastewater_flow", 3.5, "L/s", t0, telemetry.Good)}},
		{name: "unknown code stored under the code", cn: "2011", cp: rt("w01003-Rtd=13.10,w01003-Flag=N"),
			want: []telemetry.Reading{r("w01003", 13.1, "", t0, telemetry.Good)}, unmapped: []string{"w01003"}},
		{name: "facility state and info are not values", cn: "2011", cp: rt("SB1-RS=1;i12001-Info=abc;w01001-Rtd=7"),
			want: []telemetry.Reading{r("water_ph", 7, "", t0, telemetry.Good)}},
		{name: "no factors", cn: "2011", cp: "DataTime=20160801085857"},
		{name: "no DataTime", cn: "2011", cp: "w01001-Rtd=7", kind: KindDataTime},
		{name: "bad DataTime", cn: "2011", cp: "DataTime=20161301000000;w01001-Rtd=7", kind: KindDataTime},
		{name: "DataTime of an unset clock", cn: "2011", cp: "DataTime=19700101000000;w01001-Rtd=7", kind: KindDataTime},
		{name: "bad SampleTime", cn: "2011", cp: rt("w01018-SampleTime=2016,w01018-Rtd=1"), kind: KindDataTime},
		{name: "not a number", cn: "2011", cp: rt("w01001-Rtd=seven"), kind: KindValue},
		{name: "exponent", cn: "2011", cp: rt("w01001-Rtd=7e0"), kind: KindValue},
		{name: "NaN text", cn: "2011", cp: rt("w01001-Rtd=NaN"), kind: KindValue},
		{name: "lone point", cn: "2011", cp: rt("w01001-Rtd=7."), kind: KindValue},
		{name: "empty value flagged N", cn: "2011", cp: rt("w01001-Rtd=,w01001-Flag=N"), kind: KindValue},
		{name: "empty value without flag", cn: "2011", cp: rt("w01001-Rtd="), kind: KindValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cp, err := hj212.ParseCP([]byte(tc.cp))
			if err != nil {
				t.Fatal(err)
			}
			u, err := mapUpload(tc.cn, cp, "d", defaultFactor, hj212.Beijing)
			if tc.kind != "" {
				me, ok := err.(*mapError)
				if !ok || me.kind != tc.kind {
					t.Fatalf("error %v, want kind %s", err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(u.readings) != len(tc.want) {
				t.Fatalf("readings %+v, want %+v", u.readings, tc.want)
			}
			for i, got := range u.readings {
				w := tc.want[i]
				same := got.Metric == w.Metric && got.Unit == w.Unit && got.Time.Equal(w.Time) && got.Quality == w.Quality &&
					got.Device == w.Device && (got.Value == w.Value || math.IsNaN(got.Value) && math.IsNaN(w.Value))
				if !same {
					t.Errorf("reading %d: %+v, want %+v", i, got, w)
				}
				if err := got.Validate(); err != nil {
					t.Errorf("reading %d: %v", i, err)
				}
			}
			if len(u.unmapped) != len(tc.unmapped) || len(u.unmapped) > 0 && u.unmapped[0] != tc.unmapped[0] {
				t.Errorf("unmapped %v, want %v", u.unmapped, tc.unmapped)
			}
		})
	}
}

// FuzzMapUpload: whatever a logger sends, the codec and the mapping refuse
// it by kind or make readings the store takes.
func FuzzMapUpload(f *testing.F) {
	for _, s := range []string{frameC14, frameC16, frameC50a, frameC50b} {
		f.Add([]byte(s))
	}
	f.Add([]byte("##0050QN=1;CN=2011;CP=&&DataTime=20200101000000;w01001-Rtd=-.5&&0000\r\n"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		p, err := hj212.Decode(frame)
		if err != nil {
			if hj212.Kind(err) == "" {
				t.Fatalf("refusal without a kind: %v", err)
			}
			return
		}
		if _, ok := periods[p.CN]; !ok {
			p.CN = hj212.CNRealtime
		}
		checkMapped(t, p.CN, p.CP)
	})
}

// FuzzMapCP fuzzes the data area itself, past the CRC that makes most
// fuzzed frames stop at the codec.
func FuzzMapCP(f *testing.F) {
	for _, s := range []string{frameC14, frameC16, frameC50a, frameC50b} {
		p, err := hj212.Decode([]byte(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), []byte(p.CP.String()))
	}
	f.Add(uint8(1), []byte("DataTime=20200101000000;w01001-Rtd=,w01001-Flag=D;x-Avg=+.5;SB1-RS=1"))
	cns := []string{hj212.CNRealtime, hj212.CNMinute, hj212.CNHour, hj212.CNDay}
	f.Fuzz(func(t *testing.T, cn uint8, data []byte) {
		cp, err := hj212.ParseCP(data)
		if err != nil {
			return
		}
		checkMapped(t, cns[int(cn)%len(cns)], cp)
	})
}

// checkMapped maps cp: refused by kind, or readings the store takes.
func checkMapped(t *testing.T, cn string, cp hj212.CP) {
	u, err := mapUpload(cn, cp, "d", defaultFactor, hj212.Beijing)
	if err != nil {
		if _, ok := err.(*mapError); !ok {
			t.Fatalf("refusal without a kind: %v", err)
		}
		return
	}
	if len(u.readings) >= 1<<indexBits {
		t.Fatalf("%d readings in one frame: the numbers of the next part would overlap", len(u.readings))
	}
	if len(u.readings) > 0 {
		b := telemetry.Batch{Gateway: "g", Stream: "s", FirstSeq: 1, Readings: u.readings}
		if err := b.Validate(); err != nil {
			t.Fatalf("readings the store would refuse: %v", err)
		}
	}
}
