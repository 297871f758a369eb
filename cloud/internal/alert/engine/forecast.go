package engine

import (
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/trend"
)

// Forecast rules warn before a threshold is crossed (预测预警): the
// measure is the hours until the robust trend of the metric (Theil–Sen over
// the rule's window, significant by Mann–Kendall; package trend) reaches
// the rule's target, judged by the levels ("<= 6" hours: yellow). The fit
// moves only when a bucket of the window closes; no significant trend, too
// few buckets, a trend away from the target or a series that has turned
// forecasts nothing, which ends the warning (after clear_for). An observed
// alert on the same device and metric supersedes the forecast (mute).

// forecast judges reading v at t for forecast series s: the hours until
// the crossing and whether there is one (false: no forecast, no level),
// and whether there is anything new to judge.
func (e *Engine) forecast(s *series, t time.Time, v float64) (hours float64, crossing, judge bool) {
	f := s.rule.Forecast
	if s.Trend == nil {
		w, err := trend.NewWindow(f.Window, f.Buckets)
		if err != nil {
			return 0, false, false // refused when the rule loaded
		}
		s.Trend = w
	}
	e.windowMoved(s)
	if !s.Trend.Add(t, v) {
		return 0, false, false
	}
	e.fitter.Alpha = f.Alpha
	e.fits++
	fit, ok := e.fitter.Fit(s.Trend, f.MinPoints)
	s.Cross, s.Slope, s.Fitted = time.Time{}, 0, v
	if !ok {
		return s.A.Value, false, true
	}
	s.Slope, s.Fitted = fit.Slope, fit.At(t)
	low := f.Toward.Op == "<" || f.Toward.Op == "<="
	if (low && fit.Departed > 0) || (!low && fit.Departed < 0) {
		// The series turned away from the hazard: the old line is no
		// longer the trend. Start afresh from the turn, so that only a new
		// trend, built on what came after it, can forecast again.
		s.Trend.KeepNewest(trend.RecentBuckets)
		return s.A.Value, false, true
	}
	d, toward := fit.Crossing(f.Toward.Op, f.Toward.Value, t)
	if !toward {
		return s.A.Value, false, true
	}
	s.Cross = t.Add(d)
	return d.Hours(), true, true
}

// forecastNotes explains a forecast alert at severity sev: where the
// series is, where it is heading, when it is expected there (counted from
// now), and how fast; value is the hours left at the last fit.
func (e *Engine) forecastNotes(s *series, sev alert.Severity, out map[string]string) {
	f := s.rule.Forecast
	out["value"], out["unit"] = formatValue(s.A.Value), "h"
	out["target"] = f.Toward.Op + " " + withUnit(f.Toward.Value, s.Unit)
	out["value_text"] = withUnit(s.Fitted, s.Unit)
	out["trend"] = strconv.FormatFloat(s.Slope, 'g', 3, 64) + " " + unitOr(s.Unit) + "/h"
	for _, l := range s.Levels {
		if l.Severity == sev && l.Set != nil {
			out["threshold"] = "expected within " + formatValue(*l.Set) + " h"
		}
	}
	if s.Cross.IsZero() {
		return
	}
	out["expected_at"] = s.Cross.UTC().Format(time.RFC3339)
	out["expected_in"], out["expected_in_cn"] = trend.FormatDuration(max(0, s.Cross.Sub(e.o.Now())))
}

// checkForecasts ends forecasts that nothing judges any more: a series
// that stopped reporting has no trend to speak of (its silence is
// DeviceSilent's). Three bucket widths without a fit is no forecast.
func (e *Engine) checkForecasts(now time.Time) {
	for s := range e.fcSeries {
		if s.A.State != alert.Pending && s.A.State != alert.Firing {
			continue
		}
		f := s.rule.Forecast
		if width := f.Window / time.Duration(f.Buckets); now.Sub(s.A.EvaluatedAt) > 3*width {
			e.stepGated(s, s.A.Value, now, false)
		}
	}
}

func unitOr(u string) string {
	if u == "" {
		return "units"
	}
	return u
}
