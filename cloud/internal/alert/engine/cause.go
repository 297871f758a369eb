package engine

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
)

// Absence is judged per cause, on what exists rather than on what has
// arrived:
//
//   - Sight. Silence is counted only in time the cloud could hear the
//     field: not while Intake is unhealthy (its broker connection lost, its
//     intake stalled or failing), not while the process was paused or
//     starved (a gap between ticks on the monotonic clock), and nothing
//     before the start (sight.go). An alert that already fires is kept on
//     evidence alone: a blind spell neither raises nor resolves anything.
//   - Evidence. A device's last sign of life is the newest of what the
//     cloud stored, what reached it (stored or not), and what its gateway
//     says it acquired (last_read in the state message): a backlog held at
//     the edge or a slow store is not a silent device.
//   - Cause. A gateway that is offline, or not heard (no data, no state)
//     for two heartbeats, is the cause of its devices' silence: one alert,
//     GatewayOffline, lists them. A device silent while its gateway is
//     heard is silent for a reason of its own, or of its bus: when every
//     device on a bus (two or more) is silent, one BusDown alert lists them;
//     otherwise each raises DeviceSilent. A device silent while its gateway
//     has not been heard since is undecided: no alert until the gateway
//     speaks (then the device or bus is the cause) or is judged down.

// Intake says whether the cloud can hear the field now.
type Intake interface {
	// Health is "" when the cloud hears the field, else why not ("lost
	// its broker connection", "store writes stalled for 40s").
	Health() string
}

// heartbeatSlack is what a gateway's heartbeat may be late by (link
// latency, a QoS 1 retry) before it counts as missed.
const heartbeatSlack = 5 * time.Second

// intakeWindow and intakeShare: the cloud's own alert holds while it is
// blind, or while it was blind for a third of the last five minutes (an
// intake that stalls again and again).
const (
	intakeWindow = 5 * time.Minute
	intakeShare  = 1.0 / 3
)

// see updates the engine's sight of the field: unhealthy intake makes it
// blind; a gap between ticks (the process paused or starved) was blind.
func (e *Engine) see(now time.Time) {
	mono := e.mono()
	why := ""
	if e.o.Intake != nil {
		why = e.o.Intake.Health()
	}
	if gap := mono.Sub(e.lastTick); gap > 3*e.o.Tick {
		e.log.Warn("the cloud was paused or starved between checks; that time does not count as silence",
			"gap", gap.Round(time.Millisecond))
		e.sight.blind(e.lastTickAt, now)
	}
	e.lastTick, e.lastTickAt = mono, now
	if why != "" && !e.blind {
		e.log.Warn("the cloud cannot hear the field; silence is not counted until it can", "why", why)
	} else if why == "" && e.blind {
		e.log.Info("the cloud hears the field again")
	}
	e.blind = why != ""
	e.sight.set(e.blind, now)
	if e.intakeRule != nil {
		s := e.builtinSeries(e.intakeRule, "", "", "")
		v := 0.0
		share := e.sight.blindShare(intakeWindow, now)
		switch {
		case why != "":
			v = 2
			s.why = "the cloud cannot hear the field: " + why
			s.whyCN = "云端收不到现场数据：" + why
		case share >= intakeShare:
			v = 2
			s.why = fmt.Sprintf("the cloud could not hear the field for %.0f%% of the last %s", 100*share, roundDur(intakeWindow))
			s.whyCN = fmt.Sprintf("最近 %s 内云端有 %.0f%% 的时间收不到现场数据", roundDur(intakeWindow), 100*share)
		}
		e.stepWall(s, v, now)
	}
}

// busKey names a bus of a gateway.
type busKey struct{ gw, bus string }

// silentDevice is a device found silent in this tick.
type silentDevice struct {
	d       registry.Expected
	s       *series
	silence time.Duration
	limit   time.Duration
	sev     alert.Severity
}

// checkField judges gateways, buses and devices by cause.
func (e *Engine) checkField(gws []registry.GatewayView, devs []registry.Expected, now time.Time) {
	clear(e.muting)
	clear(e.busMute)
	views := make(map[string]registry.GatewayView, len(gws))
	down := map[string]*series{} // gateways that are the cause of their devices' silence
	for _, g := range gws {
		views[g.ID] = g
		firing := false
		if e.gwRule != nil {
			if s, ok := e.series[skey{e.gwRule.idx, g.ID, "", ""}]; ok {
				firing = s.A.State == alert.Firing
			}
		}
		isDown, why, whyCN := e.gatewayDown(g, now, firing)
		if !isDown && e.downNow[g.ID] {
			e.upAt[g.ID] = now // back: its devices get their allowance again, their data is on its way
		}
		e.downNow[g.ID] = isDown
		if e.gwRule == nil {
			if isDown {
				down[g.ID] = nil // no gateway alert: its devices speak for themselves
			}
			continue
		}
		s := e.builtinSeries(e.gwRule, g.ID, g.Site, "")
		s.why, s.whyCN, s.members = why, whyCN, s.members[:0]
		v := 0.0
		if isDown {
			v = 2
			down[g.ID] = s
		}
		e.stepWall(s, v, now)
		if s.A.State == alert.Firing {
			// Mutes its devices' alerts only once it speaks for them: a
			// reconnect (pending a moment) must not mute and unmute, and so
			// re-page, every alert of the gateway. New silence alerts need
			// no muting: its devices are listed in it instead.
			e.muting[g.ID] = s.A.Fingerprint
		}
	}

	type busState struct {
		site, port string
		total      int
		silent     []*silentDevice
		// failing counts devices the gateway says fail since lately but
		// that are not silent yet: the bus may be going down with them.
		failing int
	}
	buses := map[busKey]*busState{}
	var alone []*silentDevice
	for _, d := range devs {
		c := e.tuningFor(d)
		if c == nil {
			continue
		}
		s := e.deviceSeries(c, d, now)
		var b *busState
		if d.Bus != "" && !d.Quiet {
			k := busKey{d.Gateway, d.Bus}
			if b = buses[k]; b == nil {
				b = &busState{site: d.Site, port: d.Port}
				buses[k] = b
			}
			b.total++
		}
		since, judged := e.silentSince(d, s)
		limit := e.limitFor(c, d)
		var quiet time.Duration
		switch {
		case !judged:
		case s.A.State == alert.Firing || e.busFiring(d):
			quiet = now.Sub(since) // kept on evidence alone: a blind spell or a gateway's return resolves nothing
		default:
			quiet = e.sight.heard(later(since, e.upAt[d.Gateway]), now)
		}
		if !judged || limit <= 0 || quiet <= limit {
			if b != nil && (d.Health == "failing" || d.Health == "quarantined") && now.Sub(d.HealthSince) <= limit {
				b.failing++
			}
			s.why, s.whyCN = "", ""
			e.stepWall(s, 0, now)
			continue
		}
		sd := &silentDevice{d: d, s: s, silence: quiet, limit: limit, sev: c.Levels[0].Severity}
		gs, gwDown := down[d.Gateway]
		if gwDown && gs != nil {
			gs.members = append(gs.members, d.Device)
			e.stepWall(s, hold(s), now)
			continue
		}
		if !gwDown && !decided(d, views[d.Gateway], since, limit) {
			e.stepWall(s, hold(s), now) // its gateway has not spoken since: wait for it, or for its alert
			continue
		}
		if b != nil {
			b.silent = append(b.silent, sd)
		} else {
			alone = append(alone, sd)
		}
	}

	keys := make([]busKey, 0, len(buses))
	for k := range buses {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].gw+"\x00"+keys[i].bus < keys[j].gw+"\x00"+keys[j].bus })
	for _, k := range keys {
		b := buses[k]
		if gs, gwDown := down[k.gw]; gwDown && gs != nil {
			// Its gateway is down (and says so): a bus that was down stays as
			// it is; its devices are in the gateway's alert.
			if s, ok := e.series[skey{e.busRule.idxOr(), k.gw, k.bus, ""}]; ok {
				e.stepWall(s, hold(s), now)
				if s.A.State == alert.Firing {
					e.busMute[k] = s.A.Fingerprint
				}
			}
			continue
		}
		if e.busRule == nil || b.total < 2 || len(b.silent) < b.total {
			if s, ok := e.series[skey{e.busRule.idxOr(), k.gw, k.bus, ""}]; ok && e.busRule != nil {
				e.stepWall(s, 0, now)
			}
			if b.failing > 0 && e.busRule != nil {
				// Others on the bus have just begun to fail: wait (at most
				// one allowance) to see whether the whole bus is down.
				for _, sd := range b.silent {
					e.stepWall(sd.s, hold(sd.s), now)
				}
				continue
			}
			alone = append(alone, b.silent...)
			continue
		}
		s := e.builtinSeries(e.busRule, k.gw, b.site, k.bus)
		sev := alert.Blue
		s.members = s.members[:0]
		var errs []string
		for _, sd := range b.silent {
			sev = max(sev, sd.sev)
			s.members = append(s.members, sd.d.Device)
			if sd.d.Error != "" && len(errs) < 3 {
				errs = append(errs, sd.d.Device+": "+sd.d.Error)
			}
			e.stepWall(sd.s, hold(sd.s), now)
		}
		where := k.bus
		if b.port != "" {
			where += " (" + b.port + ")"
		}
		if _, gwDown := down[k.gw]; gwDown { // and no gateway alert to say so
			s.why = fmt.Sprintf("all %d devices on bus %s are silent, and gateway %s is not heard either", len(b.silent), where, k.gw)
			s.whyCN = fmt.Sprintf("总线 %s 上全部 %d 台设备无数据，网关 %s 也无响应", where, len(b.silent), k.gw)
		} else {
			s.why = fmt.Sprintf("all %d devices on bus %s are silent while gateway %s is heard: the line, its adapter or serial server, or its power", len(b.silent), where, k.gw)
			s.whyCN = fmt.Sprintf("网关 %s 在线，但总线 %s 上全部 %d 台设备无数据：检查线缆、转换器或串口服务器及其供电", k.gw, where, len(b.silent))
		}
		if len(errs) > 0 {
			s.why += "; last errors: " + strings.Join(errs, "; ")
		}
		v := float64(sev) // the severity is its devices'
		if len(e.busRule.Levels) == 1 {
			v = 2 // or the one configured
		}
		e.stepWall(s, v, now)
		if s.A.State == alert.Firing {
			e.busMute[k] = s.A.Fingerprint
		}
	}
	for _, sd := range alone {
		s := sd.s
		s.why = fmt.Sprintf("no data for %s (allowed %s) while gateway %s is heard", roundDur(sd.silence), roundDur(sd.limit), sd.d.Gateway)
		s.whyCN = fmt.Sprintf("网关 %s 在线，但设备 %s 已 %s 无数据（允许 %s）", sd.d.Gateway, sd.d.Device, roundDur(sd.silence), roundDur(sd.limit))
		if _, gwDown := down[sd.d.Gateway]; gwDown {
			s.why = fmt.Sprintf("no data for %s (allowed %s); gateway %s is not heard either", roundDur(sd.silence), roundDur(sd.limit), sd.d.Gateway)
			s.whyCN = fmt.Sprintf("设备 %s 已 %s 无数据（允许 %s），网关 %s 也无响应", sd.d.Device, roundDur(sd.silence), roundDur(sd.limit), sd.d.Gateway)
		}
		if sd.d.Error != "" {
			s.why += "; the gateway says: " + sd.d.Error
			s.whyCN += "；网关报告：" + sd.d.Error
		}
		e.stepWall(s, float64(sd.silence)/float64(sd.limit), now)
	}
}

func (c *crule) idxOr() int32 {
	if c == nil {
		return -100
	}
	return c.idx
}

// hold is the measure that keeps a silence series as it is while another
// cause explains it: firing stays firing (muted by that cause), anything
// else never becomes an alert of its own.
func hold(s *series) float64 {
	if s.A.State == alert.Firing {
		return s.A.Value // the measure that holds its level
	}
	return 0
}

// gatewayDown reports whether a gateway is the cause of its devices'
// silence, and why, in English and Chinese. A gateway that does not say
// how often it speaks (older than the heartbeat) is judged only on its
// last will. firing: its alert fires, and is kept on evidence alone.
func (e *Engine) gatewayDown(g registry.GatewayView, now time.Time, firing bool) (bool, string, string) {
	if g.State == registry.Offline {
		return true, fmt.Sprintf("offline since %s: its connection to the broker ended (last will or shutdown)", stamp(g.Since)),
			fmt.Sprintf("自 %s 起离线：与消息服务器的连接已断开", stamp(g.Since))
	}
	hb := g.Heartbeat
	if hb <= 0 {
		return false, "", ""
	}
	quiet := e.sight.heard(g.HeardAt, now)
	if firing {
		quiet = now.Sub(later(g.HeardAt, e.sight.origin))
	}
	if quiet > 2*hb+heartbeatSlack {
		return true, fmt.Sprintf("not responding: nothing heard for %s (no data, no heartbeat every %s), though its broker session may still be up",
				roundDur(quiet), hb),
			fmt.Sprintf("无响应：已 %s 未收到任何数据或心跳（心跳间隔 %s），连接可能仍在", roundDur(quiet), hb)
	}
	return false, "", ""
}

// decided reports whether the gateway has spoken since device d's silence
// began in earnest, or has itself said that d does not answer: then the
// device (or its bus) is the cause, not the gateway.
func decided(d registry.Expected, g registry.GatewayView, since time.Time, limit time.Duration) bool {
	if d.Health == "failing" || d.Health == "quarantined" {
		return !g.HeardAt.IsZero() && !g.HeardAt.Before(d.HealthSince)
	}
	return g.HeardAt.After(since.Add(limit))
}

// silentSince is when device d last showed it exists: its newest
// evidence, or when the engine first expected it. A quiet device (a reader)
// is judged only when its gateway says it fails, from then.
func (e *Engine) silentSince(d registry.Expected, s *series) (time.Time, bool) {
	if d.Quiet {
		if d.Health != "failing" || d.HealthSince.IsZero() {
			return time.Time{}, false
		}
		return d.HealthSince, true
	}
	if d.LastSeen.IsZero() {
		return s.Known, true
	}
	return d.LastSeen, true
}

// busFiring reports whether the BusDown alert of d's bus fires: its devices
// are then judged on evidence alone, like a firing alert of their own.
func (e *Engine) busFiring(d registry.Expected) bool {
	if e.busRule == nil || d.Bus == "" {
		return false
	}
	s, ok := e.series[skey{e.busRule.idx, d.Gateway, d.Bus, ""}]
	return ok && s.A.State == alert.Firing
}

// tuningFor is the nodata rule that tunes DeviceSilent for d (the most
// specific selector), the built-in itself, or nil when none covers d.
func (e *Engine) tuningFor(d registry.Expected) *crule {
	var best *crule
	spec := -1
	for _, c := range e.tunings {
		if sp := c.Select.Specificity(); sp > spec && c.Select.Matches(d.Gateway, d.Site, d.Device, d.Profile) {
			best, spec = c, sp
		}
	}
	if best == nil && e.devDefault {
		return e.devRule
	}
	return best
}

// limitFor is how long device d may be silent under tuning c.
func (e *Engine) limitFor(c *crule, d registry.Expected) time.Duration {
	if c.NoData != nil {
		if c.NoData.Timeout > 0 {
			return c.NoData.Timeout
		}
		return time.Duration(c.NoData.After * float64(d.Interval))
	}
	return time.Duration(e.o.Silence * float64(d.Interval))
}

// deviceSeries is d's DeviceSilent series, with the levels and labels of
// tuning c.
func (e *Engine) deviceSeries(c *crule, d registry.Expected, now time.Time) *series {
	s := e.builtinSeries(e.devRule, d.Gateway, d.Site, d.Device)
	if s.Known.IsZero() {
		s.Known = now
		e.touch(s)
	}
	if s.tuned != c {
		s.tuned = c
		s.Levels, s.Source = c.Levels, "rule "+c.ID
		if c == e.devRule {
			s.Source = "built-in"
		}
		labels := make(map[string]string, len(s.A.Labels)+len(c.Labels)) // a new map: history rows hold the old one
		for k, v := range e.devRule.labels {
			labels[k] = v
		}
		for _, k := range []string{"gateway_id", "site", "device"} {
			if v, ok := s.A.Labels[k]; ok {
				labels[k] = v
			}
		}
		for k, v := range c.Labels {
			if k != "alertname" {
				labels[k] = v
			}
		}
		s.A.Labels = labels
	}
	s.bus = d.Bus
	return s
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }

// roundDur rounds a duration for people: to the second below ten
// minutes, to the minute above ("45s", "4m10s", "2h10m").
func roundDur(d time.Duration) string {
	if d >= 10*time.Minute {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	h, m, sec := d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second
	var b strings.Builder
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if sec > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", sec)
	}
	return b.String()
}
