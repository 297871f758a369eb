package hj212listen

import (
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/protocols/hj212"
)

// nominalStep is the step assumed between a CN's DataTimes before two in a
// row were seen: the longest the standard allows (MinInterval ≤ 30 minutes,
// table 4), so an unknown step never makes a history request of nothing.
var nominalStep = map[string]time.Duration{hj212.CNMinute: 30 * time.Minute, hj212.CNHour: time.Hour}

// recall fills lg's memory of cn's newest DataTime, when it has none (the
// cloud started since), from the registry's latest values, which it seeds
// from the store: the newest of the logger's metrics of cn's period
// (…_minute_…). Called before a frame is stored, so that frame is not
// taken for the newest.
func (l *Listener) recall(lg *logger, cn string) {
	if _, askable := nominalStep[cn]; !askable {
		return
	}
	lg.mu.Lock()
	_, known := lg.last[cn]
	lg.mu.Unlock()
	if known {
		return
	}
	st, ok := l.o.Registry.Station(lg.cfg.Station)
	if !ok {
		return
	}
	var newest time.Time
	mark := "_" + periods[cn].name + "_"
	for _, d := range st.Devices {
		if d.ID != lg.cfg.device() {
			continue
		}
		for _, s := range d.Latest {
			if strings.Contains(s.Metric, mark) && s.Time.After(newest) {
				newest = s.Time
			}
		}
	}
	if newest.IsZero() {
		return
	}
	lg.mu.Lock()
	if _, known := lg.last[cn]; !known {
		lg.last[cn] = newest
	}
	lg.mu.Unlock()
}

// older reports whether t is not after the newest DataTime of cn stored
// from lg: history (a resend, a supplementary upload) rather than news.
func (lg *logger) older(cn string, t time.Time) bool {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	last, ok := lg.last[cn]
	return ok && !t.After(last)
}

// stored records that lg's cn data of DataTime t is stored, and returns
// the newest DataTime before it (ok false when none) and the step between
// DataTimes known so far (0 when none).
func (lg *logger) stored(cn string, t time.Time) (prev time.Time, ok bool, step time.Duration) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	prev, ok = lg.last[cn]
	step = lg.gap[cn]
	if ok && t.After(prev) {
		if d := t.Sub(prev); step == 0 || d < step {
			lg.gap[cn] = d
		}
	}
	if !ok || t.After(prev) {
		lg.last[cn] = t
	}
	return prev, ok, step
}

// history asks the logger for the minute or hour data of its outage: on the
// first frame of cn on this connection, when its DataTime is more than one
// and a half steps after the newest stored before, the records from just
// after that one to just before this one (at most history_max) are asked
// for with the standard's request (CN 2051 or 2061 with BeginTime and
// EndTime, HJ 212-2017 C.20), answered by the logger with 9011, the
// uploads and 9012. One request per CN and connection; none is sent again.
func (c *conn) history(s *session, cn string, t time.Time) {
	prev, had, step := s.lg.stored(cn, t)
	first := !s.seen[cn]
	s.seen[cn] = true
	nominal, askable := nominalStep[cn]
	if !first || !had || !askable || c.l.cfg.NoHistory || s.asked != "" || !t.After(prev) {
		return
	}
	if step == 0 {
		step = nominal
	}
	if t.Sub(prev) <= step+step/2 {
		return
	}
	begin, end := prev.Add(time.Second), t.Add(-time.Second)
	if m := c.l.cfg.historyMax(); end.Sub(begin) > m {
		begin = end.Add(-m)
	}
	now := c.l.o.Now()
	lc := s.lg.cfg
	st := s.st
	if st == "" {
		st = hj212.STSurfaceWaterSrc
	}
	req := hj212.Packet{QN: hj212.QN(now, hj212.Beijing), ST: st, CN: cn, PW: lc.pw, MN: lc.MN, NoFlag: s.noFlag,
		Flag: hj212.MakeFlag(max(s.ver, hj212.Version2017), false, true),
		CP: hj212.CP{{{Name: "BeginTime", Value: hj212.FormatTime(begin, hj212.Beijing)}},
			{{Name: "EndTime", Value: hj212.FormatTime(end, hj212.Beijing)}}}}
	if !c.send(req) {
		return
	}
	s.asked = req.QN
	c.l.m.history.WithLabelValues(cn).Inc()
	c.l.log.Info("data logger back after an outage; history requested", "mn", lc.MN, "station", lc.Station, "cn", cn,
		"begin", begin, "end", end, "qn", req.QN)
}

// answered follows the logger's answers to a history request: 9011 (QnRtn)
// and 9012 (ExeRtn) with its QN.
func (c *conn) answered(s *session, p hj212.Packet) {
	if s.asked == "" || p.QN != s.asked {
		return
	}
	switch p.CN {
	case hj212.CNRequestResponse:
		if rtn, _ := p.CP.Get("QnRtn"); rtn != hj212.QnRtnReady {
			c.l.log.Warn("data logger refused the history request", "mn", p.MN, "qn", p.QN, "qn_rtn", rtn)
			s.asked = ""
		}
	case hj212.CNExecResult:
		rtn, _ := p.CP.Get("ExeRtn")
		c.l.log.Info("history request done", "mn", p.MN, "qn", p.QN, "exe_rtn", rtn)
		s.asked = ""
	}
}
