package hj212listen

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/tlsfiles"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
	"github.com/fieldwatch/fieldwatch/telemetry"
)

// Config is the cloud's hj212: section. An empty Listen means no listener.
type Config struct {
	// Listen is host:port for the data loggers (":2012"); empty: none.
	Listen string `yaml:"listen"`
	// TLS, when set, makes the listener speak TLS (few loggers can).
	TLS *TLS `yaml:"tls"`
	// MaxConnections bounds the connections held at once (0: 10 000); a
	// connection beyond it is closed at once.
	MaxConnections int `yaml:"max_connections"`
	// MaxPending bounds the connections that have not sent a good frame
	// yet (0: half of MaxConnections), MaxPendingPerAddress those from one
	// address (0: 256), so strangers cannot take every connection. A
	// logger may stay silent until its next report after connecting, and
	// loggers behind a carrier's NAT share an address: raise the second
	// for them.
	MaxPending           int `yaml:"max_pending"`
	MaxPendingPerAddress int `yaml:"max_pending_per_address"`
	// IdleTimeout closes a connection that completes no frame for this
	// long (0: 15m). HJ 212-2017 has no heartbeat; a logger reporting
	// real-time data every 30 s and minute data every 10 minutes is never
	// idle that long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// OfflineAfter is how long a station stays online after its last
	// logger's connection closed (0: 1m): a logger back within it (a
	// dropped mobile link, a logger that connects for each report) does
	// not make its station flap.
	OfflineAfter time.Duration `yaml:"offline_after"`
	// HistoryMax bounds the span of one history request (补传) sent after
	// a logger's outage (0: 72h); NoHistory sends none.
	HistoryMax time.Duration `yaml:"history_max"`
	NoHistory  bool          `yaml:"no_history"`
	// Factors map factor codes to metrics and units over the built-in
	// table (DefaultFactors), for every logger.
	Factors map[string]Factor `yaml:"factors"`
	// Loggers is the allow-list: a frame whose MN is not here, or whose PW
	// is not its logger's, is refused.
	Loggers []Logger `yaml:"loggers"`

	// ServerTLS is TLS's configuration, built by Load.
	ServerTLS *tls.Config `yaml:"-"`
}

// TLS is the listener's certificate and key (PEM).
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Logger is one data logger (数采仪) allowed to report.
type Logger struct {
	MN string `yaml:"mn"`
	// PW or, better, PWFile (one line) is its access password.
	PW     string `yaml:"pw"`
	PWFile string `yaml:"pw_file"`
	// Station is the gateway id its readings are stored under; Site the
	// station's site; Name and SiteName their display names.
	Station  string `yaml:"station"`
	Site     string `yaml:"site"`
	Name     string `yaml:"name"`
	SiteName string `yaml:"site_name"`
	// Location is where the station is (WGS84), for the console's map.
	Location *telemetry.Location `yaml:"location"`
	// Device is the device id of its readings (default: the MN).
	Device string `yaml:"device"`
	// Factors override the section's and the built-in table for this
	// logger.
	Factors map[string]Factor `yaml:"factors"`

	pw string // PW, or PWFile's content
}

// Factor is what a factor code's values become.
type Factor struct {
	Metric string `yaml:"metric"`
	Unit   string `yaml:"unit"`
	// CouUnit is the unit of its cumulative values (-Cou in minute, hour
	// and day data: a volume for a flow); empty when unknown.
	CouUnit string `yaml:"cou_unit"`
}

// maxMetric leaves room for the longest suffix (_minute_zs_avg) within a
// metric name's 64 characters.
const maxMetric = telemetry.MaxNameLen - len("_minute_zs_avg")

// Defaults of the zero fields.
const (
	DefaultMaxConnections       = 10_000
	DefaultIdleTimeout          = 15 * time.Minute
	DefaultHistoryMax           = 72 * time.Hour
	DefaultOfflineAfter         = time.Minute
	DefaultMaxPendingPerAddress = 256
)

// Enabled reports whether a listener is configured.
func (c *Config) Enabled() bool { return c.Listen != "" }

func (c *Config) maxConnections() int {
	if c.MaxConnections == 0 {
		return DefaultMaxConnections
	}
	return c.MaxConnections
}

func (c *Config) maxPending() (all, perAddress int) {
	all, perAddress = c.MaxPending, c.MaxPendingPerAddress
	if all == 0 {
		all = max(c.maxConnections()/2, 1)
	}
	if perAddress == 0 {
		perAddress = DefaultMaxPendingPerAddress
	}
	return all, perAddress
}

func (c *Config) idleTimeout() time.Duration {
	if c.IdleTimeout == 0 {
		return DefaultIdleTimeout
	}
	return c.IdleTimeout
}

func (c *Config) offlineAfter() time.Duration {
	if c.OfflineAfter == 0 {
		return DefaultOfflineAfter
	}
	return c.OfflineAfter
}

func (c *Config) historyMax() time.Duration {
	if c.HistoryMax == 0 {
		return DefaultHistoryMax
	}
	return c.HistoryMax
}

// Validate checks the section; p is its path ("hj212").
func (c *Config) Validate(r *yamlconf.Report, p string) {
	if c.Listen == "" {
		if len(c.Loggers) > 0 || c.TLS != nil {
			r.Errorf(p+".listen", "is required for loggers and tls (host:port such as \":2012\")")
		}
		return
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		r.Errorf(p+".listen", "%q is not host:port", c.Listen)
	}
	if c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		r.Errorf(p+".tls.cert_file", "a TLS listener needs cert_file and key_file")
	}
	if c.MaxConnections < 0 || c.MaxConnections > 1_000_000 {
		r.Errorf(p+".max_connections", "%d is outside 1..1000000", c.MaxConnections)
	}
	if c.MaxPending < 0 || c.MaxPending > c.maxConnections() {
		r.Errorf(p+".max_pending", "%d is outside 1..max_connections (%d)", c.MaxPending, c.maxConnections())
	}
	if c.MaxPendingPerAddress < 0 || c.MaxPendingPerAddress > c.maxConnections() {
		r.Errorf(p+".max_pending_per_address", "%d is outside 1..max_connections (%d)", c.MaxPendingPerAddress, c.maxConnections())
	}
	if c.IdleTimeout != 0 && (c.IdleTimeout < 10*time.Second || c.IdleTimeout > 24*time.Hour) {
		r.Errorf(p+".idle_timeout", "%v is outside 10s..24h", c.IdleTimeout)
	}
	if c.OfflineAfter < 0 || c.OfflineAfter > time.Hour {
		r.Errorf(p+".offline_after", "%v is outside 0..1h", c.OfflineAfter)
	}
	if c.HistoryMax < 0 || c.HistoryMax > 366*24*time.Hour {
		r.Errorf(p+".history_max", "%v is outside 0..8784h", c.HistoryMax)
	}
	validateFactors(r, p+".factors", c.Factors)
	if len(c.Loggers) == 0 {
		r.Errorf(p+".loggers", "none: every frame would be refused; list each data logger's mn, pw and station")
	}
	mns := map[string]int{}
	series := map[[2]string]int{}
	for i := range c.Loggers {
		l := &c.Loggers[i]
		lp := yamlconf.Join(p+".loggers", i)
		if !alnum(l.MN, 24) {
			r.Errorf(lp+".mn", "%q is not 1-24 letters or digits (HJ 212-2017 table 3)", l.MN)
		} else if j, dup := mns[l.MN]; dup {
			r.Errorf(lp+".mn", "%s is also loggers[%d]'s", l.MN, j)
		} else {
			mns[l.MN] = i
		}
		switch {
		case l.PW != "" && l.PWFile != "":
			r.Errorf(lp+".pw_file", "give pw or pw_file, not both")
		case l.PW == "" && l.PWFile == "":
			r.Errorf(lp+".pw", "is required (or pw_file)")
		case l.PW != "" && !alnum(l.PW, 6):
			r.Errorf(lp+".pw", "is not 1-6 letters or digits (HJ 212-2017 table 3)")
		}
		if err := telemetry.CheckName("station", l.Station); err != nil {
			r.Errorf(lp+".station", "%v", err)
		}
		if l.Site != "" {
			if err := telemetry.CheckName("site", l.Site); err != nil {
				r.Errorf(lp+".site", "%v", err)
			}
		}
		if err := telemetry.CheckDisplayName(l.Name); err != nil {
			r.Errorf(lp+".name", "%v", err)
		}
		if err := telemetry.CheckDisplayName(l.SiteName); err != nil {
			r.Errorf(lp+".site_name", "%v", err)
		}
		if g := l.Location; g != nil && (g.Lat < -90 || g.Lat > 90 || g.Lon < -180 || g.Lon > 180) {
			r.Errorf(lp+".location", "%v,%v is not on Earth (lat -90..90, lon -180..180)", g.Lat, g.Lon)
		}
		if l.Device != "" {
			if err := telemetry.CheckName("device", l.Device); err != nil {
				r.Errorf(lp+".device", "%v", err)
			}
		}
		k := [2]string{l.Station, l.device()}
		if j, dup := series[k]; dup && l.Station != "" {
			r.Errorf(lp+".device", "station %s device %s is also loggers[%d]'s: give one of them another device", k[0], k[1], j)
		} else {
			series[k] = i
		}
		validateFactors(r, lp+".factors", l.Factors)
	}
}

func (l *Logger) device() string {
	if l.Device != "" {
		return l.Device
	}
	return l.MN
}

func validateFactors(r *yamlconf.Report, p string, fs map[string]Factor) {
	for code, f := range fs {
		fp := p + "." + code
		if !alnum(code, 16) {
			r.Errorf(fp, "%q is not a factor code (letters and digits, such as w01018)", code)
		}
		if err := telemetry.CheckName("metric", f.Metric); err != nil {
			r.Errorf(fp+".metric", "%v", err)
		} else if len(f.Metric) > maxMetric {
			r.Errorf(fp+".metric", "%q is longer than %d characters (a suffix such as _minute_zs_avg must fit)", f.Metric, maxMetric)
		}
		for _, u := range [...]struct{ field, unit string }{{".unit", f.Unit}, {".cou_unit", f.CouUnit}} {
			if err := (telemetry.Reading{Device: "d", Metric: "m", Unit: u.unit, Time: time.Unix(1, 0)}).Validate(); err != nil {
				r.Errorf(fp+u.field, "%v", err)
			}
		}
	}
}

// Load reads the password files and the TLS key pair; loose is told of
// secret files others can read.
func (c *Config) Load(r *yamlconf.Report, p string, loose func(string, *secretfile.Loose)) {
	c.ServerTLS = nil
	if !c.Enabled() {
		return
	}
	for i := range c.Loggers {
		l := &c.Loggers[i]
		l.pw = l.PW
		if l.PWFile == "" {
			continue
		}
		field := yamlconf.Join(p+".loggers", i, "pw_file")
		b, lf, err := secretfile.Read(l.PWFile)
		pw := strings.TrimSpace(string(b))
		switch {
		case err != nil:
			r.Errorf(field, "%v", err)
		case !alnum(pw, 6):
			r.Errorf(field, "%s does not hold 1-6 letters or digits (HJ 212-2017 table 3)", l.PWFile)
		default:
			l.pw = pw
			loose(field, lf)
		}
	}
	if c.TLS != nil && c.TLS.CertFile != "" && c.TLS.KeyFile != "" {
		pair, keyErr, err := tlsfiles.KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		switch {
		case err != nil && keyErr:
			r.Errorf(p+".tls.key_file", "%v", err)
		case err != nil:
			r.Errorf(p+".tls.cert_file", "%v", err)
		default:
			if lf, err := secretfile.Check(c.TLS.KeyFile); err == nil {
				loose(p+".tls.key_file", lf)
			}
			c.ServerTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*pair}}
		}
	}
}

// InlinePasswords reports whether a logger's pw is written in the config
// file itself (rather than in a pw_file).
func (c *Config) InlinePasswords() bool {
	for i := range c.Loggers {
		if c.Loggers[i].PW != "" {
			return true
		}
	}
	return false
}

func alnum(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// String names a logger in logs.
func (l *Logger) String() string { return fmt.Sprintf("%s (station %s)", l.MN, l.Station) }
