package hj212up

import (
	"slices"
	"strconv"
	"time"

	"github.com/fieldwatch/fieldwatch/gateway/internal/config"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Request results, the label of requests_total.
const (
	ReqDone     = "done"     // executed (9011 QnRtn=1, then 9012 ExeRtn=1, or 9013 for a notice)
	ReqRejected = "rejected" // not supported, or refused by policy (9011 QnRtn=2)
	ReqBadPW    = "bad_pw"   // 9011 QnRtn=3
	ReqBadMN    = "bad_mn"   // 9011 QnRtn=4
)

// request handles a packet from the platform that is not the answer the
// session awaits, on the flow of HJ 212-2017 C.1–C.4: a request is
// answered 9011 (QnRtn, when its Flag asks for an answer), then executed
// with any upload and 9012 (ExeRtn); a notice is answered 9013.
//
// Executed: 1011 (the logger's time), 1000 (OverTime and ReCount, until
// the gateway restarts or reloads), 2011 and 2012 (start and stop
// real-time data), and with History the history requests (2031, 2051,
// 2061) from what the buffer holds. Refused (QnRtn=2): 1012 — the gateway's
// time comes from NTP, GNSS or its RTC (gateway.clock), never from a
// platform — and every request not built.
func (u *Uplink) request(l *link, p hj212.Packet) error {
	switch p.CN {
	case hj212.CNDataResponse, hj212.CNNoticeResponse, hj212.CNRequestResponse, hj212.CNExecResult:
		return nil // a late answer, or an answer to nothing we asked
	}
	ask := p.NoFlag || p.Flag.Ack()
	answer := func(cn string, cp hj212.CP) error {
		ans := hj212.Packet{QN: p.QN, ST: hj212.STSystem, CN: cn, PW: u.c.PW, MN: u.c.MN,
			Flag: hj212.MakeFlag(u.version, false, false), CP: cp}
		if cn != hj212.CNRequestResponse && cn != hj212.CNExecResult && cn != hj212.CNNoticeResponse {
			ans.ST = u.c.ST // an upload
		}
		frame, err := ans.Frame()
		if err != nil {
			return err
		}
		u.m.frames.WithLabelValues(u.c.Name, cn).Inc()
		return u.write(l, frame)
	}
	qnRtn := func(v string) error {
		if !ask {
			return nil
		}
		return answer(hj212.CNRequestResponse, hj212.CP{{{Name: "QnRtn", Value: v}}})
	}
	exeRtn := func(v string) error {
		return answer(hj212.CNExecResult, hj212.CP{{{Name: "ExeRtn", Value: v}}})
	}
	count := func(result string) { u.m.requests.WithLabelValues(u.c.Name, p.CN, result).Inc() }
	switch {
	case p.MN != u.c.MN:
		count(ReqBadMN)
		u.log.Warn("platform request for another MN refused", "cn", p.CN, "mn", p.MN)
		return qnRtn(hj212.QnRtnBadMN)
	case p.PW != u.c.PW:
		count(ReqBadPW)
		u.log.Warn("platform request with a wrong password refused", "cn", p.CN)
		return qnRtn(hj212.QnRtnBadPW)
	}
	switch p.CN {
	case hj212.CNGetTime:
		count(ReqDone)
		if err := qnRtn(hj212.QnRtnReady); err != nil {
			return err
		}
		cp := hj212.CP{{{Name: "SystemTime", Value: hj212.FormatTime(u.o.now(), u.o.Location)}}}
		if pol, ok := p.CP.Get("PolId"); ok {
			cp = hj212.CP{{{Name: "PolId", Value: pol}}, cp[0]}
		}
		if err := answer(hj212.CNGetTime, cp); err != nil {
			return err
		}
		return exeRtn(hj212.ExeRtnOK)
	case hj212.CNSetTime:
		count(ReqRejected)
		q := telemetry.ClockUnknown
		if u.o.Clock != nil {
			q = u.o.Clock()
		}
		sys, _ := p.CP.Get("SystemTime")
		u.log.Warn("platform asked to set the gateway's clock; refused: the time comes from NTP, GNSS or the RTC "+
			"(gateway.clock)", "platform_time", sys, "gateway_clock", q.String())
		return qnRtn(hj212.QnRtnRejected)
	case hj212.CNSetTimeout:
		over, err1 := strconv.Atoi(value(p.CP, "OverTime"))
		re, err2 := strconv.Atoi(value(p.CP, "ReCount"))
		if err1 != nil || err2 != nil || over < 1 || over > 99 || re < 1 || re > 99 {
			count(ReqRejected)
			if err := qnRtn(hj212.QnRtnReady); err != nil {
				return err
			}
			return exeRtn(hj212.ExeRtnCondition)
		}
		count(ReqDone)
		if err := qnRtn(hj212.QnRtnReady); err != nil {
			return err
		}
		u.c.AckTimeout, u.c.Retries = time.Duration(over)*time.Second, &re
		u.log.Info("platform set OverTime and ReCount", "ack_timeout", u.c.AckTimeout, "retries", re)
		return exeRtn(hj212.ExeRtnOK)
	case hj212.CNRealtime:
		count(ReqDone)
		if err := qnRtn(hj212.QnRtnReady); err != nil {
			return err
		}
		u.paused.Store(false)
		return exeRtn(hj212.ExeRtnOK)
	case hj212.CNStopRealtime: // a notice
		count(ReqDone)
		u.paused.Store(true)
		u.log.Info("platform stopped real-time data (2012); readings pass without frames until it starts them again (2011)")
		if !ask {
			return nil
		}
		return answer(hj212.CNNoticeResponse, nil)
	}
	if kind, ok := historyKind[p.CN]; ok && u.o.History {
		begin, err1 := hj212.ParseTime(value(p.CP, "BeginTime"), u.o.Location)
		end, err2 := hj212.ParseTime(value(p.CP, "EndTime"), u.o.Location)
		if err := qnRtn(hj212.QnRtnReady); err != nil {
			return err
		}
		if err1 != nil || err2 != nil || end.Before(begin) {
			count(ReqRejected)
			return exeRtn(hj212.ExeRtnCondition)
		}
		count(ReqDone)
		sent, err := u.sendHistory(l, kind, begin, end)
		if err != nil {
			return err
		}
		u.log.Info("answered a history request", "cn", p.CN, "begin", begin, "end", end, "periods", sent)
		if sent == 0 {
			return exeRtn(hj212.ExeRtnNoData)
		}
		return exeRtn(hj212.ExeRtnOK)
	}
	count(ReqRejected)
	u.log.Info("platform request not supported; refused", "cn", p.CN, "qn", p.QN)
	return qnRtn(hj212.QnRtnRejected)
}

// historyKind maps the history requests to the aggregates they ask for.
var historyKind = map[string]string{hj212.CNMinute: config.KindMinute, hj212.CNHour: config.KindHour,
	hj212.CNDay: config.KindDay}

// sendHistory answers a history request (补传, C.20, C.48) from the buffer:
// the aggregates of kind whose periods start within begin … end and that
// the buffer holds whole — over by now, and starting no earlier than the
// first reading still on disk — each as an upload awaiting its 9014. It
// returns how many periods it sent.
func (u *Uplink) sendHistory(l *link, kind string, begin, end time.Time) (int, error) {
	aggs := map[time.Time]*aggregate{}
	var first time.Time // of the oldest mapped reading on disk
	// Modes and quarantines from the oldest item on disk on: one that
	// began before it is not known (the flags of its readings are N).
	st := newDevices()
	for from := u.o.Buffer.Oldest(); ; {
		ch, err := u.o.Buffer.ReadHistory(from, readLimit)
		if err != nil {
			return 0, err
		}
		if ch.Len() == 0 {
			break
		}
		from = ch.First + uint64(ch.Len())
		for _, e := range ch.Events {
			st.event(e)
		}
		for _, r := range ch.Readings {
			fc, v, mapped, skip := u.mapper.Map(r)
			st.reading(r.Device)
			if mapped {
				st.learn(r.Device, fc.code)
			}
			if !mapped || skip != "" {
				continue
			}
			if first.IsZero() || r.Time.Before(first) {
				first = r.Time
			}
			start := periodStart(kind, r.Time, u.c.MinuteInterval, u.o.Location)
			if start.Before(begin) || start.After(end) {
				continue
			}
			a := aggs[start]
			if a == nil {
				a = &aggregate{start: start, end: periodEnd(kind, start, u.c.MinuteInterval), cou: u.cou}
				aggs[start] = a
			}
			a.add(fc, v, r, st.flag(r, u.o.OverRange))
			a.down(st.downCodes(), r.Time)
		}
	}
	starts := make([]time.Time, 0, len(aggs))
	for s := range aggs {
		if !s.Before(first) && !periodEnd(kind, s, u.c.MinuteInterval).After(u.o.now()) {
			starts = append(starts, s)
		}
	}
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for _, s := range starts {
		parts, err := u.packets(cnOf[kind], aggs[s].cp(u.o.Location))
		if err != nil {
			return 0, err
		}
		for _, p := range parts {
			if err := u.send(l, p); err != nil {
				return 0, err
			}
		}
	}
	return len(starts), nil
}

func value(cp hj212.CP, name string) string {
	v, _ := cp.Get(name)
	return v
}
