package config

import (
	"maps"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/protocols/hj212"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// HJ212Uplink reports the gateway's readings to a bureau's platform in HJ
// 212, the gateway acting as the data logger (现场机). It reads the same
// buffer as the MQTT uplink with a cursor of its own (docs/decisions.md,
// "HJ 212 uplink").
type HJ212Uplink struct {
	// Name names the uplink's cursor in the buffer, its metrics and logs;
	// default "hj212-<mn>". Renaming an uplink starts its cursor afresh.
	Name    string `yaml:"name"`
	Address string `yaml:"address"` // the platform, host:port
	MN      string `yaml:"mn"`      // the station's device id at the platform (1-24 letters or digits)
	PW      string `yaml:"pw"`      // access password (1-6 letters or digits)
	// PWFile holds the password instead (read at load, a trailing newline
	// dropped).
	PWFile string `yaml:"pw_file"`
	ST     string `yaml:"st"` // system code (table 5), e.g. "21" surface water, "32" water pollution source
	// Edition is 2017 (HJ 212-2017, Flag version 1, the default) or 2025
	// (Flag version 2, as the public implementations write it).
	Edition int `yaml:"edition"`
	// Factors maps metrics ("water_temperature") or one device's metric
	// ("sonde-1/water_temperature") to factor codes ("w01010"). Absent,
	// DefaultHJ212Factors applies.
	Factors map[string]string `yaml:"factors"`
	// Units overrides the unit a factor is sent in (code → unit), for
	// factors the standard's table does not name or where a platform
	// differs (PM in ug/m3).
	Units map[string]string `yaml:"units"`
	// Realtime sends real-time data (CN 2011); default true.
	Realtime *bool `yaml:"realtime"`
	// Minute, Hour and Day send the aggregates (2051, 2061, 2031) of each
	// period: Avg, Min and Max of the period's readings, on event time.
	Minute bool `yaml:"minute"`
	Hour   bool `yaml:"hour"`
	Day    bool `yaml:"day"`
	// MinuteInterval is the standard's MinInterval: the period of minute
	// aggregates (1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30 minutes; default
	// 10m).
	MinuteInterval time.Duration `yaml:"minute_interval"`
	// AggregateDelay is how long after a period's end its aggregate is
	// sent when no reading of a later period has come (default 1m).
	AggregateDelay time.Duration `yaml:"aggregate_delay"`
	// CouFlows names the flow factor whose volume a pollutant's Cou (its
	// emission in a period) is computed with (pollutant code → flow code),
	// beyond the default: w pollutants of the standard's table with w00000
	// (waste water), a pollutants with a00000 (flue gas).
	CouFlows map[string]string `yaml:"cou_flows"`
	// CouMaxGap is the longest time one reading stands for when Cou is
	// integrated (default 5m): a longer gap between two readings counts
	// this long, not its length.
	CouMaxGap time.Duration `yaml:"cou_max_gap"`
	// Ack sets the A bit: each frame waits for the platform's 9014 before
	// the uplink's cursor moves; default true. Without it, a frame counts
	// as delivered once written to the connection.
	Ack *bool `yaml:"ack"`
	// AckTimeout is the standard's OverTime (default 10s, 1s..99s).
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// Retries is the standard's ReCount (default 3, 0..99): sends after the
	// first before the link is considered unusable and re-dialled.
	Retries *int `yaml:"retries"`
	// ConnectTimeout bounds one dial (default 10s); ReconnectMax caps the
	// doubling, jittered wait between dials (default 1m).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	ReconnectMax   time.Duration `yaml:"reconnect_max"`
	// Heartbeat sends a heartbeat (CN 9015, HJ 212-2025 as the public
	// implementations write it) after this long without writing; 0 (the
	// default) sends none.
	Heartbeat time.Duration `yaml:"heartbeat"`
}

// DefaultHJ212Factors maps the metrics of the built-in profiles whose
// factor code and unit the standard's tables give (HJ 212-2017 appendix B)
// to their codes. Turbidity (no code in table B.1) and PM (the table's unit
// is unsettled) are left to the config: docs/standards/hj212.md.
var DefaultHJ212Factors = map[string]string{
	"water_temperature": "w01010",
	"water_ph":          "w01001",
	"dissolved_oxygen":  "w01009",
	"ammonia_nitrogen":  "w21003",
	"air_temperature":   "a01001",
	"air_humidity":      "a01002",
	"air_pressure":      "a01006",
	"wind_speed":        "a01007",
	"wind_direction":    "a01008",
}

var factorCode = regexp.MustCompile(`^[a-z][0-9]{5}$`)

// SendsRealtime reports whether the uplink sends real-time data (2011).
func (h *HJ212Uplink) SendsRealtime() bool { return h.Realtime == nil || *h.Realtime }

// Data kinds an uplink sends, each read from the buffer through a cursor
// of its own.
const (
	KindRealtime = "realtime"
	KindMinute   = "minute"
	KindHour     = "hour"
	KindDay      = "day"
)

// Kinds lists the data kinds the uplink sends, real-time first.
func (h *HJ212Uplink) Kinds() []string {
	var ks []string
	for _, k := range []struct {
		on   bool
		kind string
	}{{h.SendsRealtime(), KindRealtime}, {h.Minute, KindMinute}, {h.Hour, KindHour}, {h.Day, KindDay}} {
		if k.on {
			ks = append(ks, k.kind)
		}
	}
	return ks
}

// Consumer names the buffer cursor of one of the uplink's kinds: the
// uplink's name for real-time data, name.minute, name.hour, name.day for
// the aggregates.
func (h *HJ212Uplink) Consumer(kind string) string {
	if kind == KindRealtime {
		return h.Name
	}
	return h.Name + "." + kind
}

func (c *Config) loadHJ212(r *yamlconf.Report) {
	for i := range c.HJ212Uplinks {
		h := &c.HJ212Uplinks[i]
		if h.PWFile == "" {
			continue
		}
		field := yamlconf.Join("hj212_uplinks", i, "pw_file")
		b, l, err := secretfile.Read(h.PWFile)
		switch {
		case err != nil:
			r.Errorf(field, "%v", err)
		case !alnum(strings.TrimRight(string(b), "\r\n"), 6):
			r.Errorf(field, "%s does not hold 1-6 letters or digits", h.PWFile)
		default:
			h.PW = strings.TrimRight(string(b), "\r\n")
			c.noteLoose(field, l)
		}
	}
}

func (c *Config) validateHJ212(r *yamlconf.Report) {
	names := map[string]string{}
	for i := range c.HJ212Uplinks {
		h := &c.HJ212Uplinks[i]
		p := yamlconf.Join("hj212_uplinks", i)
		f := func(field string) string { return yamlconf.Join(p, field) }
		if _, port, err := net.SplitHostPort(h.Address); err != nil || port == "" {
			r.Errorf(f("address"), "%q is not host:port", h.Address)
		}
		if !alnum(h.MN, 24) {
			r.Errorf(f("mn"), "%q is not 1-24 letters or digits", h.MN)
		}
		if h.Name == "" && h.MN != "" {
			h.Name = "hj212-" + h.MN
		}
		if err := telemetry.CheckName("uplink name", h.Name); err != nil {
			r.Errorf(f("name"), "%v", err)
		} else if other, dup := names[h.Name]; dup {
			r.Errorf(f("name"), "%q is already the name of %s (two uplinks with one MN need names)", h.Name, other)
		}
		names[h.Name] = p
		switch {
		case h.PW != "" && h.PWFile != "":
			r.Errorf(f("pw_file"), "give pw or pw_file, not both")
		case h.PW == "" && h.PWFile == "":
			r.Errorf(f("pw"), "is required (or pw_file)")
		case h.PWFile == "" && !alnum(h.PW, 6):
			r.Errorf(f("pw"), "is not 1-6 letters or digits")
		}
		if len(h.ST) != 2 || !alnum(h.ST, 2) || strings.ToUpper(h.ST) != h.ST {
			r.Errorf(f("st"), "%q is not a system code of 2 characters 0-9 A-Z (table 5: 21 surface water, 22 air, 32 water pollution source, …)", h.ST)
		}
		switch h.Edition {
		case 0:
			h.Edition = 2017
		case 2017, 2025:
		default:
			r.Errorf(f("edition"), "%d is not 2017 or 2025", h.Edition)
		}
		if h.Factors == nil {
			h.Factors = maps.Clone(DefaultHJ212Factors)
		}
		if len(h.Factors) == 0 {
			r.Errorf(f("factors"), "maps no metric to a factor code")
		}
		for key, code := range h.Factors {
			dev, metric, scoped := strings.Cut(key, "/")
			if !scoped {
				metric = key
			}
			bad := telemetry.CheckName("metric", metric) != nil || (scoped && telemetry.CheckName("device", dev) != nil)
			if bad {
				r.Errorf(yamlconf.Join(f("factors"), key), "%q is not a metric or device/metric", key)
			}
			if !factorCode.MatchString(code) {
				r.Errorf(yamlconf.Join(f("factors"), key), "%q is not a factor code (a letter and 5 digits, e.g. w01018)", code)
			}
		}
		for code, unit := range h.Units {
			if !factorCode.MatchString(code) {
				r.Errorf(yamlconf.Join(f("units"), code), "%q is not a factor code (a letter and 5 digits, e.g. w01018)", code)
			} else if unit == "" || len(unit) > 16 {
				r.Errorf(yamlconf.Join(f("units"), code), "unit %q is empty or longer than 16 bytes", unit)
			}
		}
		for code, flow := range h.CouFlows {
			if !factorCode.MatchString(code) {
				r.Errorf(yamlconf.Join(f("cou_flows"), code), "%q is not a factor code (a letter and 5 digits, e.g. w01018)", code)
			} else if !factorCode.MatchString(flow) {
				r.Errorf(yamlconf.Join(f("cou_flows"), code), "flow %q is not a factor code (e.g. w00000)", flow)
			} else if flow == code {
				r.Errorf(yamlconf.Join(f("cou_flows"), code), "a factor cannot be its own flow")
			}
		}
		if h.CouMaxGap == 0 {
			h.CouMaxGap = 5 * time.Minute
		}
		if h.CouMaxGap < time.Second || h.CouMaxGap > time.Hour {
			r.Errorf(f("cou_max_gap"), "%v is outside 1s..1h", h.CouMaxGap)
		}
		if h.MinuteInterval == 0 {
			h.MinuteInterval = 10 * time.Minute
		}
		if m := h.MinuteInterval; m%time.Minute != 0 || 60%int(m/time.Minute) != 0 || m > 30*time.Minute || m <= 0 {
			r.Errorf(f("minute_interval"), "%v is not one of 1m 2m 3m 4m 5m 6m 10m 12m 15m 20m 30m (MinInterval)", m)
		}
		if h.AggregateDelay == 0 {
			h.AggregateDelay = time.Minute
		}
		if h.AggregateDelay < time.Second || h.AggregateDelay > time.Hour {
			r.Errorf(f("aggregate_delay"), "%v is outside 1s..1h", h.AggregateDelay)
		}
		if !h.SendsRealtime() && !h.Minute && !h.Hour && !h.Day {
			r.Errorf(f("realtime"), "the uplink sends nothing: set realtime, minute, hour or day")
		}
		if h.Ack == nil {
			t := true
			h.Ack = &t
		}
		if h.AckTimeout == 0 {
			h.AckTimeout = hj212.DefaultOverTime * time.Second
		}
		if h.AckTimeout < time.Second || h.AckTimeout > 99*time.Second {
			r.Errorf(f("ack_timeout"), "%v is outside 1s..99s (OverTime)", h.AckTimeout)
		}
		if h.Retries == nil {
			n := hj212.DefaultReCount
			h.Retries = &n
		} else if *h.Retries < 0 || *h.Retries > 99 {
			r.Errorf(f("retries"), "%d is outside 0..99 (ReCount)", *h.Retries)
		}
		if h.ConnectTimeout == 0 {
			h.ConnectTimeout = 10 * time.Second
		}
		if h.ConnectTimeout < 100*time.Millisecond || h.ConnectTimeout > 5*time.Minute {
			r.Errorf(f("connect_timeout"), "%v is outside 100ms..5m", h.ConnectTimeout)
		}
		if h.Heartbeat != 0 && (h.Heartbeat < time.Second || h.Heartbeat > time.Hour) {
			r.Errorf(f("heartbeat"), "%v is outside 1s..1h (or 0: none)", h.Heartbeat)
		}
		if h.ReconnectMax == 0 {
			h.ReconnectMax = time.Minute
		}
		if h.ReconnectMax < time.Second || h.ReconnectMax > time.Hour {
			r.Errorf(f("reconnect_max"), "%v is outside 1s..1h", h.ReconnectMax)
		}
	}
}

func alnum(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'A' && ch <= 'Z' || ch >= 'a' && ch <= 'z') {
			return false
		}
	}
	return true
}
