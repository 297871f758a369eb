package nmea

import (
	"errors"
	"strings"

	gonmea "github.com/adrianmo/go-nmea"
)

// newParser returns a go-nmea parser with this package's sentence parsers
// registered. Each decoder has its own: registering on go-nmea's global
// parser would be package-level state shared by every decoder.
func newParser() gonmea.SentenceParser {
	return gonmea.SentenceParser{
		CustomParsers: map[string]gonmea.ParserFunc{
			"MWV":  parseMWV,
			"MWD":  parseMWD,
			"MWH":  parseMWH,
			"NORW": parsePNORW,
		},
		// The framer has verified the checksum already, over the bytes as
		// sent; the fields go-nmea sees have been trimmed since.
		CheckCRC: func(gonmea.BaseSentence, string) error { return nil },
		OnBaseSentence: func(s *gonmea.BaseSentence) error {
			for i, f := range s.Fields {
				s.Fields[i] = strings.TrimSpace(f)
			}
			return nil
		},
	}
}

// windMWV is an MWV sentence: wind angle and speed.
type windMWV struct {
	gonmea.BaseSentence
	Angle     float64
	Reference string // R relative, T true, G gust (Gill)
	Speed     float64
	Unit      string // K km/h, M m/s, N knots, S mph
	Status    string // A valid, V invalid, "" when the talker sends no status
}

func parseMWV(s gonmea.BaseSentence) (gonmea.Sentence, error) {
	if len(s.Fields) < 4 || len(s.Fields) > 5 {
		return nil, errors.New("nmea: MWV has 4 or 5 fields")
	}
	p := gonmea.NewParser(s)
	m := windMWV{
		BaseSentence: s,
		Angle:        p.Float64(0, "wind angle"),
		Reference:    p.EnumString(1, "reference", "R", "T", "G"),
		Speed:        p.Float64(2, "wind speed"),
		Unit:         p.EnumString(3, "wind speed unit", "K", "M", "N", "S"),
	}
	if len(s.Fields) == 5 {
		m.Status = p.EnumString(4, "status", "A", "V")
	}
	return m, p.Err()
}

// windMWD is an MWD sentence: wind direction and speed. The 6-field variant
// (no knots pair) is accepted: the first two pairs are directions, the rest
// speeds with their unit letter.
type windMWD struct {
	gonmea.BaseSentence
	DirTrue, SpeedKnots, SpeedMS          float64
	HasDirTrue, HasSpeedKnots, HasSpeedMS bool
}

func parseMWD(s gonmea.BaseSentence) (gonmea.Sentence, error) {
	if len(s.Fields) != 6 && len(s.Fields) != 8 {
		return nil, errors.New("nmea: MWD has 6 or 8 fields")
	}
	p := gonmea.NewParser(s)
	m := windMWD{BaseSentence: s}
	for i := 0; i < len(s.Fields); i += 2 {
		v, has := p.Float64(i, "value"), s.Fields[i] != ""
		switch i {
		case 0:
			p.EnumString(i+1, "true direction unit", "T")
			m.DirTrue, m.HasDirTrue = v, has
		case 2:
			p.EnumString(i+1, "magnetic direction unit", "M")
		default:
			switch p.EnumString(i+1, "speed unit", "N", "M") {
			case "N":
				m.SpeedKnots, m.HasSpeedKnots = v, has
			case "M":
				m.SpeedMS, m.HasSpeedMS = v, has
			}
		}
	}
	return m, p.Err()
}

// waveMWH is an MWH sentence: wave height in feet and metres.
type waveMWH struct {
	gonmea.BaseSentence
	Feet, Metres       float64
	HasFeet, HasMetres bool
}

func parseMWH(s gonmea.BaseSentence) (gonmea.Sentence, error) {
	if len(s.Fields) != 4 {
		return nil, errors.New("nmea: MWH has 4 fields")
	}
	p := gonmea.NewParser(s)
	m := waveMWH{
		BaseSentence: s,
		Feet:         p.Float64(0, "height in feet"),
		HasFeet:      s.Fields[0] != "" && p.EnumString(1, "feet unit", "f", "F") != "",
		Metres:       p.Float64(2, "height in metres"),
		HasMetres:    s.Fields[2] != "" && p.EnumString(3, "metres unit", "M") != "",
	}
	return m, p.Err()
}

// pnorwInvalid is Nortek's marker of an invalid value.
const pnorwInvalid = -9

// wavePNORW is Nortek's $PNORW wave parameters sentence (AWAC, Signature):
// Date,Time,Basis,Method,Hm0,H3,H10,Hmax,Tm02,Tp,Tz,DirTp,SprTp,MainDir,UI,
// MeanPress,NoDetects,BadDetects,NearSurfSpeed,NearSurfDir,ErrorCode; an
// older 6-field form is Date,Time,Hm0,Hmax,Tp,MainDir. −9 marks an invalid
// value.
type wavePNORW struct {
	gonmea.BaseSentence
	Hm0, Hmax, Tm02, Tp, DirTp, MainDir float64
	// idx maps each of the values above to its field, -1 when the form
	// has no such field.
	idx       [6]int
	ErrorCode string
}

func parsePNORW(s gonmea.BaseSentence) (gonmea.Sentence, error) {
	p := gonmea.NewParser(s)
	m := wavePNORW{BaseSentence: s}
	switch len(s.Fields) {
	case 21:
		m.idx = [6]int{4, 7, 8, 9, 11, 13}
		p.Int64(2, "spectrum basis")
		p.Int64(3, "processing method")
		m.ErrorCode = p.String(20, "error code")
	case 6:
		m.idx = [6]int{2, 3, -1, 4, -1, 5}
	default:
		return nil, errors.New("nmea: PNORW has 21 fields (or 6 in the old form)")
	}
	vals := [6]*float64{&m.Hm0, &m.Hmax, &m.Tm02, &m.Tp, &m.DirTp, &m.MainDir}
	for k, i := range m.idx {
		if i >= 0 {
			*vals[k] = p.Float64(i, "wave parameter")
		}
	}
	return m, p.Err()
}

// present reports whether field i of a PNORW value k holds a valid value.
func (m wavePNORW) present(k int) (float64, bool) {
	i := m.idx[k]
	if i < 0 || m.Fields[i] == "" {
		return 0, false
	}
	v := [6]float64{m.Hm0, m.Hmax, m.Tm02, m.Tp, m.DirTp, m.MainDir}[k]
	return v, v != pnorwInvalid
}
