package sl651

import "time"

// StationItem is the station address group of a data report (F1, the
// address, then the classification code of appendix A, e.g. 'H' river),
// for Report.Body.
func StationItem(a Address, class byte, enc Encoding) Item {
	if enc == ASCII {
		return Item{ID: 0xF1, Data: []byte(a.String()), Class: class, HasClass: true}
	}
	return Item{ID: 0xF1, Def: 0xF1, Data: append([]byte(nil), a[:]...), Class: class, HasClass: true}
}

// TimeItem is an observation time group (F0, YYMMDDhhmm), t read in loc to
// the minute, for Report.Body.
func TimeItem(t time.Time, loc *time.Location, enc Encoding) Item {
	if enc == ASCII {
		return Item{ID: 0xF0, Data: []byte(t.In(loc).Format("0601021504"))}
	}
	return Item{ID: 0xF0, Def: 0xF0, Data: appendBCDTime(nil, t, loc, 5)}
}
