package trend

import (
	"math"
	"time"
)

// Crossing returns how long after now the fitted line reaches target
// from the safe side. op names the hazard side of target, as in a
// threshold rule's level: "<=" 2 means "at or below 2".
//
// It is 0 when the line's value at now is already on the hazard side. It
// is false when the line is flat or moves away from the hazard, when the
// newest buckets have departed from the line to the safe side (the series
// turned: see Fit.Departed), or when op is not one of "<", "<=", ">",
// ">=". The line's value at now is used, not the newest reading, so one
// spike does not move the answer. A crossing too far off for a
// time.Duration (about 292 years) is reported as the largest Duration.
func (f Fit) Crossing(op string, target float64, now time.Time) (time.Duration, bool) {
	y := f.At(now)
	var low, hit bool // the hazard is below target; the line is in it
	switch op {
	case "<":
		low, hit = true, y < target
	case "<=":
		low, hit = true, y <= target
	case ">":
		hit = y > target
	case ">=":
		hit = y >= target
	default:
		return 0, false
	}
	toward := f.Slope > 0
	if low {
		toward = f.Slope < 0
	}
	switch {
	case (low && f.Departed > 0) || (!low && f.Departed < 0):
		return 0, false // the series turned away; the line has not yet
	case hit:
		return 0, true
	case !toward:
		return 0, false
	}
	ns := (target - y) / f.Slope * float64(time.Hour)
	switch {
	case !(ns >= 0): // NaN from a non-finite fit
		return 0, false
	case ns >= math.MaxInt64:
		return math.MaxInt64, true
	}
	return time.Duration(math.Round(ns)), true
}
