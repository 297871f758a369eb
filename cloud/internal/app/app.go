// Package app wires the cloud together: broker (embedded or external),
// store (InfluxDB or embedded SQLite), registry, ingestor, and the HTTP
// server with the API, the dashboard, /metrics and /healthz. Run is what
// `fieldwatch-cloud run` calls; tests start it in-process on port 0.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldwatch/fieldwatch/cloud/internal/api"
	"github.com/fieldwatch/fieldwatch/cloud/internal/apitoken"
	"github.com/fieldwatch/fieldwatch/cloud/internal/backup"
	"github.com/fieldwatch/fieldwatch/cloud/internal/basemap"
	"github.com/fieldwatch/fieldwatch/cloud/internal/broker"
	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/desired"
	"github.com/fieldwatch/fieldwatch/cloud/internal/hj212listen"
	"github.com/fieldwatch/fieldwatch/cloud/internal/httpserver"
	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/natslink"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/rollout"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/influx"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/cloud/internal/web"
	"github.com/fieldwatch/fieldwatch/internal/pmtiles"
	"github.com/fieldwatch/fieldwatch/internal/version"
)

// Options start the cloud.
type Options struct {
	Config *config.Config
	Log    *slog.Logger
	// Ready, if set, is told where the cloud listens once it does.
	Ready func(Addrs)
	// Reload, when it delivers (SIGHUP), re-reads http.tokens_file; a file
	// that does not load is refused and the running tokens kept. Other
	// settings need a restart.
	Reload <-chan struct{}
}

// Addrs are where a running cloud listens.
type Addrs struct {
	HTTP string // host:port of the API and dashboard
	MQTT string // broker URL the gateways use (the embedded broker's plain listener, else its TLS one)
	// HJ212 is host:port of the HJ 212 listener, "" for none.
	HJ212 string
	// SL651 is host:port of the SL 651 central station listener ("" when off).
	SL651 string
}

// Run runs the cloud until ctx is done.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Log
	if err := cfg.Check(); err != nil {
		return err
	}
	warnSecrets(cfg, log)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldwatch_cloud_build_info",
			Help: "Always 1; the version label says which build runs.", ConstLabels: prometheus.Labels{"version": version.Version}},
			func() float64 { return 1 }))

	restored, unlock, err := lockDataDir(cfg.DataDir, log)
	if err != nil {
		return err
	}
	defer unlock()

	mq := cfg.MQTT
	link := ingest.Options{BrokerURL: mq.URL, Username: mq.Username, Password: mq.Password, TLS: mq.ClientTLS}
	gatewayURL := mq.URL
	if mq.URL == "" && !cfg.NATS.Enabled() {
		b, err := startBroker(mq, log, reg)
		if err != nil {
			return err
		}
		defer b.Close()
		in := b.Internal()
		link = ingest.Options{BrokerURL: b.InternalURL(), Username: in.Username, Password: in.Password}
		gatewayURL = b.URL()
		if gatewayURL == "" {
			gatewayURL = b.TLSURL()
		}
	}

	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()

	rg := registry.New()
	rg.SetMaxDevices(cfg.Ingest.MaxDevices)
	seedCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if samples, err := st.Latest(seedCtx, "", time.Now().Add(-cfg.Store.Lookback)); err != nil {
		log.Warn("cannot load latest values from the store; the dashboard fills as data arrives", "err", err)
	} else {
		rg.Seed(samples)
	}
	cancel()

	link.ClientID, link.NoShare, link.Workers, link.Store, link.Registry = mq.ClientID, !mq.Shared, mq.Workers, st, rg
	link.Log, link.Metrics, link.MaxFuture = log, ingest.NewMetrics(reg), cfg.Ingest.MaxFuture
	link.NotGateways = mq.NotGateways()
	if n := cfg.NATS; n.Enabled() {
		host, _ := os.Hostname()
		nl := natslink.New(natslink.Options{URLs: n.URLs, Username: n.Username, Password: n.Password,
			TLS: n.ClientTLS, Name: "fieldwatch-cloud-" + host, Stream: n.Stream, Partitions: n.Partitions,
			Replicas: n.Replicas, AckWait: n.AckWait, PinnedTTL: n.PinnedTTL, MaxPending: n.MaxPending, Log: log,
			MQTT: natslink.MQTTOptions{URLs: n.MQTT.URLs, Username: n.MQTT.Username, Password: n.MQTT.Password,
				TLS: n.MQTT.ClientTLS}})
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldwatch_nats_partitions_held",
			Help: "Partitions of the gateways' stream this replica pulls now (docs/scaling.md)."},
			func() float64 { return float64(nl.Owned()) }))
		link.Link = nl
		log.Info("the intake runs on NATS JetStream", "urls", n.URLs, "partitions", n.Partitions, "replicas", n.Replicas)
	}
	link.Restored = restored
	if mq.Shared && mq.URL != "" {
		log.Warn("mqtt.shared: any client this broker lets subscribe to $share/ingest/… takes a share of the batches; " +
			"with Mosquitto's acl_file that is every gateway (docs/security.md)")
	}

	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen for HTTP on %s: %w", cfg.HTTP.Listen, err)
	}
	defer ln.Close()
	var alerts *alerting
	var hj212Addr string
	intake := &lateIntake{}
	if !cfg.Alerting.Disabled {
		if alerts, err = startAlerting(ctx, cfg, link, rg, ln.Addr().String(), intake, log, reg); err != nil {
			return err
		}
		defer alerts.close()
		link.Alerts = alerts.engine
	}
	in := ingest.New(link)
	intake.set(in)
	if cfg.HJ212.Enabled() {
		hl, err := hj212listen.Start(ctx, hj212listen.Options{Config: &cfg.HJ212, Ingest: in, Registry: rg, Log: log,
			Metrics: hj212listen.NewMetrics(reg, log)})
		if err != nil {
			return err
		}
		defer hl.Close()
		hj212Addr = hl.Addr().String()
	}
	sl651, err := startSL651(cfg.SL651, in, rg, log, reg)
	if err != nil {
		return err
	}
	defer sl651.close()

	mux := http.NewServeMux()
	ap := api.New(st, rg, log, reg).WithAccess(cfg.HTTP.Tokens, cfg.HTTP.AnonymousRole())
	if loc, err := cfg.Location(); err == nil {
		ap.WithTimezone(loc)
	} else {
		return fmt.Errorf("timezone: %w", err) // Validate refuses it first
	}
	log.Info("API access", "tokens", cfg.HTTP.Tokens.Len(), "anonymous_role", cfg.HTTP.AnonymousRole().String())
	if cfg.HTTP.AnonymousRole() >= apitoken.Operator && !broker.Loopback(cfg.HTTP.Listen) {
		log.Warn("anyone who can reach the API may acknowledge alerts and silence them (http.anonymous: operator)",
			"listen", cfg.HTTP.Listen)
	}
	if alerts != nil {
		ap.WithAlerts(alerts.engine)
	}
	ap.WithConsole(api.Console{Basemap: cfg.Console.Basemap.Page()})
	want, err := openDesired(cfg)
	if err != nil {
		return err
	}
	defer want.Close()
	publishConfig := func(gw string, env []byte) error {
		err := in.PublishConfig(gw, env)
		if errors.Is(err, ingest.ErrNoRetained) {
			return fmt.Errorf("%w: %v", api.ErrConfigUnsupported, err)
		}
		if err == nil {
			keepDesired(want, desired.Config, gw, env, log)
		}
		return err
	}
	ap.WithConfigPublisher(publishConfig)
	publishRelease := func(ctx context.Context, gw string, m []byte) error {
		err := in.PublishRelease(ctx, gw, m)
		if errors.Is(err, ingest.ErrNoRetained) {
			return fmt.Errorf("%w: %v", api.ErrConfigUnsupported, err)
		}
		if err == nil {
			keepDesired(want, desired.Release, gw, m, log)
		}
		return err
	}
	ap.WithReleases(filepath.Join(cfg.DataDir, "releases"), publishRelease)
	if mq.URL == "" && !cfg.NATS.Enabled() { // the embedded broker forgot what it retained
		go republishDesired(ctx, want, in.Connected, publishConfig, publishRelease, log)
	}
	if !cfg.NATS.Enabled() {
		rollouts, err := startRollouts(ctx, cfg, rg, publishConfig, publishRelease, log, reg)
		if err != nil {
			return err
		}
		defer rollouts.Close()
		ap.WithRollouts(rollouts)
	} else {
		// Each replica would keep its own rollouts (data_dir/rollouts.db):
		// another replica's API would not know them, and two replicas could
		// roll out to one gateway at once (docs/decisions.md §47).
		ap.WithoutRollouts(NATSRollouts)
	}
	ap.WithCommandSender(in.SendCommand)
	ap.Register(mux)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-o.Reload:
				if cfg.HTTP.TokensFile == "" {
					log.Warn("reload: there is no http.tokens_file to re-read; other settings need a restart")
					continue
				}
				ap.ReloadTokens(cfg.HTTP.TokensFile)
			}
		}
	}()
	web.Register(mux)
	if pm := cfg.Console.Basemap.PMTiles; pm != nil {
		a, err := pmtiles.Open(pm.File)
		if err != nil {
			return fmt.Errorf("console.basemap.pmtiles.file: %w", err)
		}
		defer a.Close()
		mux.Handle("GET "+basemap.TilePath, basemap.Handler(a, log))
		log.Info("console basemap: PMTiles", "file", pm.File, "zooms", fmt.Sprintf("%d..%d", a.Header.MinZoom, a.Header.MaxZoom))
	} else if x := cfg.Console.Basemap.XYZ; x != nil {
		log.Info("console basemap: XYZ tiles; the page may load images from their origins", "url", x.URL,
			"origins", cfg.Console.Basemap.ImageOrigins())
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !in.Connected() {
			http.Error(w, "not connected to the MQTT broker", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	// One middleware in front of everything: security headers, body cap,
	// hostile paths; and every phase of a connection bounded.
	srv := httpserver.NewWithPolicy(mux, cfg.HTTP.Limits, log, httpserver.Policy(cfg.Console.Basemap.ImageOrigins()...))
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(ln) }()
	log.Info("dashboard and API listening", "url", "http://"+ln.Addr().String()+"/", "version", version.Version)
	if o.Ready != nil {
		o.Ready(Addrs{HTTP: ln.Addr().String(), MQTT: gatewayURL, HJ212: hj212Addr, SL651: sl651.addr()})
	}

	inDone := make(chan error, 1)
	go func() { inDone <- in.Run(ctx) }()
	sl651Done := make(chan error, 1)
	go func() { sl651Done <- sl651.serve(ctx) }()
	alertsDone := make(chan error, 1)
	if alerts != nil {
		go func() { alertsDone <- alerts.run(ctx) }()
	} else {
		alertsDone <- nil
	}
	select {
	case <-ctx.Done():
	case err = <-httpDone:
		err = fmt.Errorf("HTTP server stopped: %w", err)
	}
	shutCtx, cancelShut := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShut()
	if serr := srv.Shutdown(shutCtx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		log.Warn("HTTP shutdown", "err", serr)
	}
	if ierr := <-inDone; ierr != nil && err == nil {
		err = ierr
	}
	if aerr := <-alertsDone; aerr != nil && err == nil {
		err = aerr
	}
	if serr := <-sl651Done; serr != nil && err == nil {
		err = serr
	}
	return err
}

// NATSRollouts is why a cloud on NATS answers 501 to rollouts.
const NATSRollouts = "on NATS each replica would keep its own rollouts, which the other replicas' APIs would not " +
	"see and could not keep from taking the same gateways; push configs and releases to gateways one by one " +
	"(fleet push, fleet release) through any replica (docs/decisions.md §47)"

// startRollouts opens the rollouts kept in data_dir (in memory without
// one) and drives them until ctx is done.
func startRollouts(ctx context.Context, cfg *config.Config, rg *registry.Registry, publish func(string, []byte) error,
	release func(context.Context, string, []byte) error, log *slog.Logger, reg prometheus.Registerer) (*rollout.Engine, error) {
	path := ""
	if cfg.DataDir != "" {
		path = filepath.Join(cfg.DataDir, "rollouts.db")
	}
	e, err := rollout.New(rollout.Options{Path: path, Fleet: rollout.RegistryFleet{Registry: rg}, Log: log, Metrics: reg,
		Kinds: map[string]rollout.Kind{"config": rollout.ConfigKind{Registry: rg, Send: publish},
			"release": rollout.ReleaseKind{Registry: rg, Send: release}}})
	if err != nil {
		return nil, err
	}
	go e.Run(ctx)
	return e, nil
}

// lockDataDir takes the data directory's lock, so that a restore cannot
// write under a running cloud (nor a second cloud share it), and reads its
// restore marker: whether the data came back from a backup.
func lockDataDir(dir string, log *slog.Logger) (restored bool, unlock func(), err error) {
	if dir == "" {
		return false, func() {}, nil
	}
	if unlock, err = backup.Lock(dir); err != nil {
		return false, nil, err
	}
	r, err := backup.ReadRestored(dir)
	if err != nil {
		unlock()
		return false, nil, err
	}
	if r != nil {
		log.Warn("this data was restored from a backup: a gateway told more was stored than the commit records hold is "+
			"asked to send it again (docs/recovery.md)", "backup_created", r.BackupCreated, "restored_at", r.RestoredAt,
			"marker", filepath.Join(dir, backup.RestoredName))
	}
	return r != nil, unlock, nil
}

// FlagSecretWarning is logged when the InfluxDB token is given as a flag.
const FlagSecretWarning = "the InfluxDB token was given with -influx-token, and every local user can read a process's " +
	"command line in /proc/PID/cmdline (and ps shows it): use -influx-token-file, $" + config.EnvInfluxToken +
	" or store.influxdb.token_file instead"

// warnSecrets warns about secrets other local users can read: files
// readable by group or others, and a token on the command line.
func warnSecrets(cfg *config.Config, log *slog.Logger) {
	for _, l := range cfg.Loose {
		l.Warn(log)
	}
	if cfg.Store.InfluxDB.TokenFrom == config.TokenFromFlag {
		log.Warn(FlagSecretWarning, "flag", "-influx-token")
	}
}

// startBroker starts the embedded broker with the configured users,
// listeners and alert readers, its metrics on reg.
func startBroker(mq config.MQTT, log *slog.Logger, reg prometheus.Registerer) (*broker.Broker, error) {
	b, err := broker.Start(broker.Options{Listen: mq.Listen, TLSListen: mq.TLSListener.Listen, TLS: mq.ServerTLS,
		Users: mq.Users, AllowAnonymous: mq.AllowAnonymous, AlertReaders: mq.AlertReaders, Log: log,
		Metrics: broker.NewMetrics(reg), Limits: broker.Limits{ConnectTimeout: mq.ConnectTimeout, MaxConnections: mq.MaxConnections}})
	if err != nil {
		return nil, err
	}
	auth := "clients known by the name they give (no password file)"
	switch {
	case mq.Users != nil:
		auth = fmt.Sprintf("passwords from %s (%d users)", mq.PasswordFile, mq.Users.Len())
	case mq.TLSListener.RequireClientCert && b.Addr() == "":
		auth = "client certificates"
	}
	log.Info("embedded MQTT broker listening", "addr", b.Addr(), "tls_addr", b.TLSAddr(), "auth", auth)
	return b, nil
}

func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	if ix := cfg.Store.InfluxDB; ix.URL != "" {
		s, err := influx.Open(influx.Config{URL: ix.URL, Token: ix.Token, Org: ix.Org, Bucket: ix.Bucket})
		if err != nil {
			return nil, err
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.Ping(pctx); err != nil {
			// Keep running: batches are not acknowledged until it answers.
			log.Warn("InfluxDB does not answer yet; batches wait at the gateways until it does", "url", ix.URL, "err", err)
		}
		log.Info("storing readings in InfluxDB", "url", ix.URL, "bucket", ix.Bucket)
		return s, nil
	}
	path := filepath.Join(cfg.DataDir, "fieldwatch.db")
	s, err := sqlite.Open(path)
	if err != nil {
		return nil, err
	}
	log.Info("storing readings in the embedded store", "path", path)
	return s, nil
}
