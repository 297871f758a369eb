package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// BuoyStream generates the NMEA 0183 output of a moored met-ocean buoy: a
// GNSS receiver (ZDA, GGA, RMC), a weather station (MWV true and relative,
// and MDA or XDR), a water temperature probe (MTW) and optionally a Nortek
// wave sensor ($PNORW), with correct checksums, values from Env and faults
// injected at the rates in Faults.
//
// Next returns one burst of sentences, what the buoy's logger sends once per
// period (a second, usually). A burst is about 450 bytes, 550 with waves:
// at 9600 baud it takes about 0.5 s on the wire (LineTime), so 1 s bursts
// fit; at 4800 baud use a 2 s period. Next is deterministic for a given
// Seed and sequence of times.
type BuoyStream struct {
	Env      Environment
	Lat, Lon float64 // mooring position, ° WGS84
	// Drift, when set, moves the buoy off its mooring: metres north and
	// east at t. GPS jitter of about a metre is added on top.
	Drift func(t time.Time) (north, east float64)
	// Met is "MDA" (default) or "XDR": how the weather station reports
	// pressure, temperatures and humidity.
	Met string
	// Waves adds a $PNORW every tenth burst.
	Waves  bool
	Faults BuoyFaults
	Seed   uint64
	// Counts is what Next has produced so far.
	Counts BuoyCounts

	rng   *rand.Rand
	burst int
}

// BuoyFaults are the probabilities, per sentence, of each injected fault;
// at most one fault is injected per sentence.
type BuoyFaults struct {
	Garbage     float64 // printable junk bytes before the sentence
	Binary      float64 // control and 8-bit noise bytes before the sentence
	BadChecksum float64 // the sentence goes out with a wrong checksum
	Overlong    float64 // a 600-byte line (with a valid checksum) before the sentence
}

// BuoyCounts counts what a BuoyStream produced.
type BuoyCounts struct {
	Sentences   int // sentences sent intact
	Waves       int // of which $PNORW
	Garbage     int // junk runs
	Binary      int // noise runs
	BadChecksum int // sentences sent with a wrong checksum
	Overlong    int // overlong lines
}

// LineTime is how long n bytes take on a serial line at baud, 8N1.
func LineTime(n, baud int) time.Duration {
	return time.Duration(n) * 10 * time.Second / time.Duration(baud)
}

// Position returns where the buoy is at t, without jitter.
func (b *BuoyStream) Position(t time.Time) (lat, lon float64) {
	lat, lon = b.Lat, b.Lon
	if b.Drift != nil {
		n, e := b.Drift(t)
		lat, lon = nmeaOffset(lat, lon, n, e)
	}
	return lat, lon
}

// nmeaOffset moves a point by metres north and east.
func nmeaOffset(lat, lon, north, east float64) (float64, float64) {
	const r = 6371008.8
	return lat + north/r*180/math.Pi, lon + east/(r*math.Cos(lat*math.Pi/180))*180/math.Pi
}

// Next returns the burst of sentences of time now.
func (b *BuoyStream) Next(now time.Time) []byte {
	if b.rng == nil {
		b.rng = rand.New(rand.NewPCG(b.Seed, b.Seed^0x9e3779b97f4a7c15))
	}
	now = now.UTC()
	var out strings.Builder
	for _, s := range b.sentences(now) {
		b.emit(&out, s)
	}
	b.burst++
	return []byte(out.String())
}

// emit writes one sentence (without $ and checksum) with maybe a fault.
func (b *BuoyStream) emit(out *strings.Builder, body string) {
	f := b.Faults
	x := b.rng.Float64()
	switch {
	case x < f.Garbage:
		b.Counts.Garbage++
		out.WriteString(b.junk("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789#*,.:;-+=/?"))
	case x < f.Garbage+f.Binary:
		b.Counts.Binary++
		out.WriteByte(0x00) // at least one control byte
		out.WriteString(b.junk("\x01\x02\x03\x07\x08\x11\x13\x1b\x7f\x80\x8a\x9c\xc3\xe9\xfe\xffABC"))
	case x < f.Garbage+f.Binary+f.Overlong:
		b.Counts.Overlong++
		long := "WIXDR" + strings.Repeat(",C,12.3,C,X", 55)
		out.WriteString(nmeaSentence(long, 0))
	case x < f.Garbage+f.Binary+f.Overlong+f.BadChecksum:
		b.Counts.BadChecksum++
		out.WriteString(nmeaSentence(body, 1+byte(b.rng.IntN(255))))
		return
	}
	b.Counts.Sentences++
	if strings.HasPrefix(body, "PNORW") {
		b.Counts.Waves++
	}
	out.WriteString(nmeaSentence(body, 0))
}

// junk returns 1 to 12 bytes drawn from alphabet.
func (b *BuoyStream) junk(alphabet string) string {
	n := 1 + b.rng.IntN(12)
	j := make([]byte, n)
	for i := range j {
		j[i] = alphabet[b.rng.IntN(len(alphabet))]
	}
	return string(j)
}

// nmeaSentence frames body as $body*hh CR LF, with the checksum XORed with
// spoil (0 for a correct one).
func nmeaSentence(body string, spoil byte) string {
	var x byte
	for i := 0; i < len(body); i++ {
		x ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X\r\n", body, x^spoil)
}

// sentences returns the bodies of the burst at now.
func (b *BuoyStream) sentences(now time.Time) []string {
	e := &b.Env
	air := e.AirTemperature(now)
	rh := e.AirHumidity(now)
	pres, _ := e.Plausible("air_pressure", "hPa", 0, now)
	ws, _ := e.Plausible("wind_speed", "m/s", 0, now)
	wd, _ := e.Plausible("wind_direction", "°", 0, now)
	wt, _ := e.Plausible("water_temperature", "°C", 0, now)
	dew := nmeaDewPoint(air, rh)
	const heading = 40.0
	lat, lon := b.Position(now)
	jn, je := b.rng.NormFloat64(), b.rng.NormFloat64()
	lat, lon = nmeaOffset(lat, lon, jn, je)
	hms := now.Format("150405") + fmt.Sprintf(".%02d", now.Nanosecond()/1e7)
	la, ns, lo, ew := nmeaLat(lat), "N", nmeaLon(lon), "E"
	if lat < 0 {
		ns = "S"
	}
	if lon < 0 {
		ew = "W"
	}
	kn := 3600.0 / 1852
	s := []string{
		fmt.Sprintf("GPZDA,%s,%02d,%02d,%04d,00,00", hms, now.Day(), int(now.Month()), now.Year()),
		fmt.Sprintf("GPGGA,%s,%s,%s,%s,%s,1,09,0.9,2.1,M,17.9,M,,", hms, la, ns, lo, ew),
		fmt.Sprintf("GPRMC,%s,A,%s,%s,%s,%s,0.3,180.0,%s,,,A", hms, la, ns, lo, ew, now.Format("020106")),
		fmt.Sprintf("WIMWV,%.1f,T,%.2f,M,A", wd, ws),
		fmt.Sprintf("WIMWV,%.1f,R,%.2f,N,A", math.Mod(wd-heading+360, 360), ws*kn),
	}
	if b.Met == "XDR" {
		s = append(s, fmt.Sprintf("WIXDR,C,%+.1f,C,TEMP,C,%+.1f,C,DEWP,P,%.4f,B,PRESS,H,%.0f,P,RH", air, dew, pres/1000, rh))
	} else {
		s = append(s, fmt.Sprintf("WIMDA,%.4f,I,%.4f,B,%.1f,C,%.1f,C,%.1f,,%.1f,C,%.1f,T,%.1f,M,%.1f,N,%.1f,M",
			pres/33.8639, pres/1000, air, wt, rh, dew, wd, math.Mod(wd+3.5, 360), ws*kn, ws))
	}
	s = append(s, fmt.Sprintf("YXMTW,%.1f,C", wt))
	if b.Waves && b.burst%10 == 0 {
		hs := 0.8 + 0.4*math.Max(0, ws-2)/5
		s = append(s, fmt.Sprintf("PNORW,%s,%s,0,4,%.2f,-9.00,%.2f,%.2f,%.2f,%.2f,-9.00,%.1f,28.0,%.1f,0.61,12.30,0,0,0.22,180.0,0000",
			now.Format("010206"), now.Format("150405"), hs, hs*1.27, hs*1.7, 3.5+hs*2, 5+hs*2.5, math.Mod(wd+10, 360), math.Mod(wd+15, 360)))
	}
	return s
}

// nmeaDewPoint is the Magnus formula.
func nmeaDewPoint(t, rh float64) float64 {
	g := math.Log(rh/100) + 17.62*t/(243.12+t)
	return 243.12 * g / (17.62 - g)
}

func nmeaLat(v float64) string { return nmeaDM(math.Abs(v), 2) }
func nmeaLon(v float64) string { return nmeaDM(math.Abs(v), 3) }

// nmeaDM formats degrees as NMEA (d)ddmm.mmmmm.
func nmeaDM(v float64, w int) string {
	deg := math.Floor(v)
	mins := (v - deg) * 60
	if math.Round(mins*1e5) >= 60e5 { // 59.999996 would print as 60.00000
		deg, mins = deg+1, 0
	}
	return fmt.Sprintf("%0*d%08.5f", w, int(deg), mins)
}
