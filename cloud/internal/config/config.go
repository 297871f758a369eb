// Package config is the cloud's configuration. Every field has a default,
// so `fieldwatch-cloud run` with no file runs on embedded defaults: an
// in-process MQTT broker and an SQLite store in data_dir. A file (strict
// YAML, errors with file:line) and flags override the defaults.
package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // zones on a machine without /usr/share/zoneinfo

	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/broker"
	"github.com/fieldwatch/fieldwatch/cloud/internal/hj212listen"
	"github.com/fieldwatch/fieldwatch/cloud/internal/httpserver"
	"github.com/fieldwatch/fieldwatch/cloud/internal/passwd"
	"github.com/fieldwatch/fieldwatch/internal/secretfile"
	"github.com/fieldwatch/fieldwatch/internal/yamlconf"
)

// Config is fieldwatch-cloud's configuration.
type Config struct {
	// DataDir holds the embedded store (fieldwatch.db), the alert state
	// (alerts.db, notify.db), the rollouts (rollouts.db) and the gateways'
	// desired state (desired.db).
	DataDir string `yaml:"data_dir"`
	HTTP    HTTP   `yaml:"http"`
	MQTT    MQTT   `yaml:"mqtt"`
	Store   Store  `yaml:"store"`
	// Ingest bounds what the gateways' batches and states may make the
	// cloud keep.
	Ingest Ingest `yaml:"ingest"`
	// Alerting is the early-warning engine.
	Alerting Alerting `yaml:"alerting"`
	// Timezone is the bureau's time zone (IANA name): where the statistics'
	// days, weeks and months begin (GET /api/v1/stats). Default
	// Asia/Shanghai.
	Timezone string `yaml:"timezone"`
	// Console is the web console: its map's basemap.
	Console Console `yaml:"console"`
	// HJ212 is the HJ 212 platform listener for environment data loggers.
	HJ212 hj212listen.Config `yaml:"hj212"`
	// SL651 is the SL 651-2014 central station listener (off by default).
	SL651 SL651 `yaml:"sl651"`
	// NATS, when its URLs are set, carries the gateways' batches from a
	// JetStream cluster to several cloud replicas (docs/scaling.md).
	NATS NATS `yaml:"nats"`

	// File is the config file, "" for none.
	File string `yaml:"-"`
	// Loose are the secret files (and a config file holding a secret)
	// that other users can get at, found by the last load; the cloud logs
	// a warning for each at start.
	Loose []*secretfile.Loose `yaml:"-"`
}

// HTTP serves the API, the dashboard, /metrics and /healthz.
type HTTP struct {
	Listen string `yaml:"listen"`
	// TokensFile lists the API's bearer tokens with their roles
	// (`fieldwatch-cloud token` adds one); see docs/api.md.
	TokensFile string `yaml:"tokens_file"`
	// Anonymous is the role of a request without a token. Unset: none with
	// a tokens file; otherwise operator on a loopback listener (one machine,
	// as `make demo`) and viewer on any other.
	Anonymous *apitoken.Role `yaml:"anonymous"`
	// Limits bound each connection: timeouts, header and body sizes
	// (zero: the default).
	Limits httpserver.Limits `yaml:"limits"`

	// Tokens is TokensFile's content, read by Check.
	Tokens *apitoken.Set `yaml:"-"`
}

// AnonymousRole is the role of a request without a token.
func (h *HTTP) AnonymousRole() apitoken.Role {
	switch {
	case h.Anonymous != nil:
		return *h.Anonymous
	case h.TokensFile != "":
		return apitoken.None
	case broker.Loopback(h.Listen):
		return apitoken.Operator
	}
	return apitoken.Viewer
}

// load reads the token file.
func (h *HTTP) load(r *yamlconf.Report, loose func(string, *secretfile.Loose)) {
	h.Tokens = nil
	if h.TokensFile == "" {
		return
	}
	if l, err := secretfile.Check(h.TokensFile); err == nil {
		loose("http.tokens_file", l)
	}
	s, err := apitoken.Load(h.TokensFile)
	if err != nil {
		r.Errorf("http.tokens_file", "%v", err)
		return
	}
	if s.Len() == 0 {
		r.Errorf("http.tokens_file", "%s lists no tokens; add one with `fieldwatch-cloud token`", h.TokensFile)
	}
	h.Tokens = s
}

// MQTT is where the gateways' batches arrive.
type MQTT struct {
	// URL of an external broker (tcp://host:1883, ssl://host:8883). Empty
	// runs the embedded broker.
	URL string `yaml:"url"`
	// Listen is the embedded broker's plain MQTT listener; empty for none
	// (then TLSListener is needed).
	Listen string `yaml:"listen"`
	// PasswordFile is the embedded broker's users, one line per gateway in
	// Mosquitto's mosquitto_passwd format, so one file serves both brokers.
	PasswordFile string `yaml:"password_file"`
	// AllowAnonymous lets the embedded broker admit clients by the name
	// they give on a non-loopback listener, without a password file or
	// client certificates. The topic ACL still keys on that name.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// AlertReaders are users who may read fieldwatch/v1/alerts/#.
	AlertReaders []string `yaml:"alert_readers"`
	// TLSListener is the embedded broker's TLS listener.
	TLSListener TLSListener `yaml:"tls_listener"`
	// ConnectTimeout is how long a new connection to the embedded broker
	// has to complete its TLS handshake and CONNECT (0: 10 s), and
	// MaxConnections how many gateway connections it holds at once (0:
	// 10 000); see broker.Limits.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	MaxConnections int           `yaml:"max_connections"`
	// Username, Password and TLS log the ingestor in to an external broker.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	TLS      TLS    `yaml:"tls"`
	ClientID string `yaml:"client_id"`
	// Shared subscribes through $share/ingest/… so replicas split the load.
	// Off by default: on a broker that does not check subscriptions
	// (Mosquitto with an acl_file) any client may join that group and take
	// a share of the batches (docs/decisions.md).
	Shared bool `yaml:"shared"`
	// NonGatewayUsers are broker users that are not gateways, besides
	// Username, AlertReaders and the shipped ACL's fieldwatch-cloud and
	// fieldwatch-alerts: the ingestor refuses batches and states on their
	// topics (NotGateways).
	NonGatewayUsers []string `yaml:"non_gateway_users"`
	// Workers is how many batches are written to the store at once.
	Workers int `yaml:"workers"`

	// Users is PasswordFile's content, read by Check.
	Users *passwd.File `yaml:"-"`
	// ServerTLS is TLSListener's configuration and ClientTLS the
	// ingestor's for an external TLS broker, built by Check.
	ServerTLS *tls.Config `yaml:"-"`
	ClientTLS *tls.Config `yaml:"-"`
}

// TLSListener is the embedded broker's TLS listener. With
// require_client_cert every client needs a certificate from client_ca_file,
// and its common name is its user name (as Mosquitto's
// use_identity_as_username); without, a certificate is used when given and
// a password otherwise.
type TLSListener struct {
	Listen            string `yaml:"listen"`
	CertFile          string `yaml:"cert_file"`
	KeyFile           string `yaml:"key_file"`
	ClientCAFile      string `yaml:"client_ca_file"`
	RequireClientCert bool   `yaml:"require_client_cert"`
}

// TLS is how the ingestor checks an external broker and proves who it is.
type TLS struct {
	CAFile     string `yaml:"ca_file"` // empty: the system's roots
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"` // empty: the URL's host
}

// Store is where readings are kept.
type Store struct {
	// InfluxDB, when its URL is set, replaces the embedded store.
	InfluxDB InfluxDB `yaml:"influxdb"`
	// Lookback is how far back the registry looks for latest values at start.
	Lookback time.Duration `yaml:"lookback"`
}

// InfluxDB locates an InfluxDB 2.x, or 1.8+ with Flux enabled.
type InfluxDB struct {
	URL string `yaml:"url"`
	// Token, or better TokenFile (one line; surrounding white space is
	// dropped), authenticates to InfluxDB. $FIELDWATCH_INFLUX_TOKEN and the
	// -influx-token-file and -influx-token flags override both.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	Org       string `yaml:"org"`
	Bucket    string `yaml:"bucket"`

	// TokenFrom says where Token came from: TokenFromFlag makes the cloud
	// warn at start, for a flag is visible to every local user.
	TokenFrom TokenSource `yaml:"-"`
	// tokenRead is the token last read from TokenFile.
	tokenRead string
}

// Ingest bounds what gateways may make the cloud keep.
type Ingest struct {
	// MaxFuture is how far ahead of the cloud's clock a reading or event
	// may be stamped; further ahead it is dropped (and counted), the rest
	// of its batch stored and acknowledged.
	MaxFuture time.Duration `yaml:"max_future"`
	// MaxDevices is how many devices the registry tracks per gateway.
	MaxDevices int `yaml:"max_devices"`
}

// Limits of the ingest section.
const (
	minMaxFuture  = time.Minute
	maxMaxFuture  = 365 * 24 * time.Hour
	maxMaxDevices = 1_000_000
)

func (in *Ingest) validate(r *yamlconf.Report) {
	if in.MaxFuture < minMaxFuture || in.MaxFuture > maxMaxFuture {
		r.Errorf("ingest.max_future", "%v is outside %v..%v (a clock a little fast must not lose its readings)",
			in.MaxFuture, minMaxFuture, maxMaxFuture)
	}
	if in.MaxDevices < 1 || in.MaxDevices > maxMaxDevices {
		r.Errorf("ingest.max_devices", "%d is outside 1..%d", in.MaxDevices, maxMaxDevices)
	}
}

// TokenSource is where a secret was given.
type TokenSource string

// Where the InfluxDB token came from.
const (
	TokenFromConfig TokenSource = ""     // store.influxdb.token or token_file
	TokenFromEnv    TokenSource = "env"  // $FIELDWATCH_INFLUX_TOKEN
	TokenFromFlag   TokenSource = "flag" // -influx-token
)

// EnvInfluxToken is the environment variable that holds the InfluxDB token.
const EnvInfluxToken = "FIELDWATCH_INFLUX_TOKEN"

// Default returns the embedded-defaults configuration.
func Default() *Config {
	return &Config{
		DataDir:  "fieldwatch-data",
		HTTP:     HTTP{Listen: "127.0.0.1:8080", Limits: httpserver.DefaultLimits()},
		MQTT:     MQTT{Listen: "127.0.0.1:1883", Workers: 4},
		Store:    Store{Lookback: 30 * 24 * time.Hour},
		Ingest:   Ingest{MaxFuture: 10 * time.Minute, MaxDevices: 1024},
		Alerting: defaultAlerting(),
		Timezone: "Asia/Shanghai",
		SL651:    defaultSL651(),
		NATS:     defaultNATS(),
	}
}

// Location is Timezone's zone (Validate has checked that it loads).
func (c *Config) Location() (*time.Location, error) { return time.LoadLocation(c.Timezone) }

// LoadFile reads a config file over the defaults; path "" gives the defaults.
func LoadFile(path string) (*Config, error) {
	c := Default()
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config: %w", err)
	}
	if err := yamlconf.Decode(path, data, c); err != nil {
		return nil, err
	}
	c.File = path
	var r yamlconf.Report
	c.load(&r)
	if err := r.Err(path, data); err != nil {
		return nil, err
	}
	return c, nil
}

// load reads the files the config names, noting those that are loose.
func (c *Config) load(r *yamlconf.Report) {
	c.Loose = nil
	loose := func(field string, l *secretfile.Loose) {
		if l != nil {
			l.Field = field
			c.Loose = append(c.Loose, l)
		}
	}
	c.MQTT.load(r, loose)
	c.HTTP.load(r, loose)
	c.Store.InfluxDB.load(r, loose)
	c.Console.Basemap.load(r)
	c.HJ212.Load(r, "hj212", loose)
	c.NATS.load(r, loose)
	if c.File != "" && (c.MQTT.Password != "" || (c.Store.InfluxDB.Token != "" && c.Store.InfluxDB.TokenFile == "" &&
		c.Store.InfluxDB.TokenFrom == TokenFromConfig)) {
		// The file itself holds a secret.
		l, err := secretfile.Check(c.File)
		if err == nil {
			loose("config file (it holds mqtt.password or store.influxdb.token)", l)
		}
	} else if c.File != "" && c.HJ212.InlinePasswords() {
		if l, err := secretfile.Check(c.File); err == nil {
			loose("config file (it holds hj212.loggers[].pw)", l)
		}
	}
}

// load reads the token file.
func (ix *InfluxDB) load(r *yamlconf.Report, loose func(string, *secretfile.Loose)) {
	if ix.TokenFile == "" {
		return
	}
	b, l, err := secretfile.Read(ix.TokenFile)
	switch {
	case err != nil:
		r.Errorf("store.influxdb.token_file", "%v", err)
	case strings.TrimSpace(string(b)) == "":
		r.Errorf("store.influxdb.token_file", "%s is empty", ix.TokenFile)
	default:
		ix.Token = strings.TrimSpace(string(b))
		ix.tokenRead = ix.Token
		loose("store.influxdb.token_file", l)
	}
}

// Validate implements yamlconf.Validator; callers that change fields after
// loading (flags) call Check.
func (c *Config) Validate(r *yamlconf.Report) {
	hostPort := func(field, v string, required bool) {
		if v == "" && !required {
			return
		}
		if _, _, err := net.SplitHostPort(v); err != nil {
			r.Errorf(field, "%q is not host:port", v)
		}
	}
	hostPort("http.listen", c.HTTP.Listen, true)
	c.HTTP.Limits.Validate(r, "http.limits")
	c.NATS.validate(r)
	if c.NATS.Enabled() && c.MQTT.URL == "" && needsMQTT(c.Alerting) {
		r.Errorf("mqtt.url", "is required with nats.urls when a receiver publishes over MQTT: the embedded "+
			"broker does not run with NATS; give the cluster's MQTT listener")
	}
	if c.MQTT.URL == "" && !c.NATS.Enabled() {
		c.MQTT.validateEmbedded(r, hostPort)
	} else if c.MQTT.URL != "" {
		c.MQTT.validateExternal(r)
	}
	c.MQTT.validateNonGateways(r)
	if c.MQTT.Workers < 1 || c.MQTT.Workers > 256 {
		r.Errorf("mqtt.workers", "%d is outside 1..256", c.MQTT.Workers)
	}
	if ix := c.Store.InfluxDB; ix.Token != "" && ix.TokenFile != "" && ix.Token != ix.tokenRead {
		r.Errorf("store.influxdb.token_file", "give token or token_file, not both")
	}
	if ix := c.Store.InfluxDB; ix.URL != "" {
		if u, err := url.Parse(ix.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.Errorf("store.influxdb.url", "%q is not an http(s) URL", ix.URL)
		}
		if ix.Bucket == "" {
			r.Errorf("store.influxdb.bucket", "is required with an InfluxDB URL (InfluxDB 1.8: \"db/autogen\")")
		}
	} else if c.DataDir == "" {
		r.Errorf("data_dir", "is required for the embedded store")
	}
	if c.DataDir == "" && !c.Alerting.Disabled {
		r.Errorf("data_dir", "is required for the alert state")
	}
	if c.Store.Lookback < 0 {
		r.Errorf("store.lookback", "must not be negative")
	}
	c.Ingest.validate(r)
	c.Alerting.validate(r)
	if c.Timezone == "" {
		r.Errorf("timezone", "is required (an IANA name such as Asia/Shanghai)")
	} else if _, err := time.LoadLocation(c.Timezone); err != nil {
		r.Errorf("timezone", "%q is not a time zone (an IANA name such as Asia/Shanghai)", c.Timezone)
	}
	c.Console.Basemap.validate(r)
	c.HJ212.Validate(r, "hj212")
	for i, l := range c.HJ212.Loggers {
		if slices.Contains(c.MQTT.NotGateways(), l.Station) {
			r.Errorf(yamlconf.Join("hj212.loggers", i, "station"), "%q is a broker user that is not a gateway", l.Station)
		}
	}
	c.SL651.validate(r, c.MQTT.NotGateways())
}

// Check validates a config built or changed outside a file (flags), then
// reads the files it names.
func (c *Config) Check() error {
	var r yamlconf.Report
	c.Validate(&r)
	if err := r.Err("flags", nil); err != nil {
		return err
	}
	c.load(&r)
	return r.Err("flags", nil)
}
