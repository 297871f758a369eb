package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldwatch/fieldwatch/cloud/internal/alert"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/engine"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/packs"
	"github.com/fieldwatch/fieldwatch/cloud/internal/alert/rules"
	"github.com/fieldwatch/fieldwatch/cloud/internal/config"
	"github.com/fieldwatch/fieldwatch/cloud/internal/ingest"
	"github.com/fieldwatch/fieldwatch/cloud/internal/notify"
	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
)

// alerting is the early-warning engine and its notifier.
type alerting struct {
	engine   *engine.Engine
	notifier *notify.Notifier
	mqtt     mqtt.Client
	log      *slog.Logger
}

// CheckRules loads the configured packs and rule files and resolves them
// as the engine will (tunings applied, rules that mean the same thing
// refused): the rules that will run, and what the tunings did, one line
// each. The error names files and lines.
func CheckRules(a config.Alerting) (on int, notes []string, err error) {
	all, err := loadRules(a)
	if err != nil {
		return 0, nil, err
	}
	rs, notes, err := rules.Resolve(all)
	if err != nil {
		return 0, nil, err
	}
	for _, r := range rs {
		if !r.Disabled {
			on++
		}
	}
	return on, notes, nil
}

// loadRules reads the configured packs and rule files.
func loadRules(a config.Alerting) ([]rules.Rule, error) {
	var all []rules.Rule
	for _, p := range a.Packs {
		rs, err := packs.Load(p)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	if a.Rules != "" {
		rs, err := rules.Load(a.Rules)
		if err != nil {
			return nil, err
		}
		all = append(all, rs...)
	}
	return all, rules.Check(all)
}

// startAlerting opens the notifier and the engine; link is how the
// notifier reaches the broker for MQTT receivers.
func startAlerting(ctx context.Context, cfg *config.Config, link ingest.Options, rg *registry.Registry, httpAddr string,
	intake engine.Intake, log *slog.Logger, reg prometheus.Registerer) (*alerting, error) {
	a := cfg.Alerting
	rs, err := loadRules(a)
	if err != nil {
		return nil, err
	}
	al := &alerting{log: log}
	var pub notify.Publisher
	if needsMQTT(a.Notify) {
		opts := mqtt.NewClientOptions().AddBroker(link.BrokerURL).SetClientID(alertsClientID(link.ClientID)).
			SetUsername(link.Username).SetPassword(link.Password).SetTLSConfig(link.TLS).SetCleanSession(true).
			SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(2 * time.Second)
		al.mqtt = mqtt.NewClient(opts)
		al.mqtt.Connect()
		pub = notify.NewPahoPublisher(al.mqtt)
	}
	ext := a.ExternalURL
	if ext == "" {
		ext = "http://" + httpAddr + "/"
	}
	nc := a.Notify
	if nc.ExternalURL == "" {
		nc.ExternalURL = ext
	}
	al.notifier, err = notify.Open(ctx, notify.Options{Path: filepath.Join(cfg.DataDir, "notify.db"), Config: nc,
		Publisher: pub, Log: log, Metrics: reg})
	if err != nil {
		al.close()
		return nil, err
	}
	// On a cluster (natslink) a replica judges only the gateways it holds,
	// and their alert state moves with them (docs/scaling.md).
	var serves engine.Serves
	var handoff engine.Handoff
	cl, clustered := link.Link.(replicaLink)
	if clustered {
		serves, handoff = cl.Serves, cl
	}
	al.engine, err = engine.New(engine.Options{Serves: serves, Handoff: handoff, Path: filepath.Join(cfg.DataDir, "alerts.db"), Rules: rs, Registry: rg,
		Sink: sink{al.notifier}, Log: log, Metrics: engine.NewMetrics(reg), LateAfter: a.LateAfter,
		GatewayOffline: builtin(a.GatewayOffline), DeviceSilent: builtin(a.DeviceSilent), Silence: a.DeviceSilent.After,
		BusDown: builtin(a.BusDown), CloudIntake: builtin(a.CloudIntake), Intake: intake, ExternalURL: ext})
	if err != nil {
		al.close()
		return nil, err
	}
	if clustered {
		cl.SetTake(al.engine.Take)
	}
	log.Info("early warnings on", "rules", len(rs), "packs", a.Packs, "receivers", len(nc.Receivers))
	return al, nil
}

// alertsClientID names the notifier's MQTT client after the ingestor's.
func alertsClientID(ingestID string) string {
	if ingestID != "" {
		return ingestID + "-alerts"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "fieldwatch-alerts-" + hex.EncodeToString(b[:])
}

// replicaLink is the intake's link on a cluster: it says which gateways
// this replica holds and carries their alert state to the next holder.
type replicaLink interface {
	Serves(gw string) (bool, time.Time)
	Save(ctx context.Context, gw string, state []byte)
	SetTake(func(gw string, state []byte) error)
}

func needsMQTT(c notify.Config) bool {
	for _, r := range c.Receivers {
		if r.MQTT != nil {
			return true
		}
	}
	return false
}

func builtin(b config.Builtin) engine.Builtin {
	return engine.Builtin{Disabled: b.Disabled, Severity: b.Severity, For: b.For}
}

// run runs the engine's checks and the notifier's deliveries until ctx is
// done.
func (al *alerting) run(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- al.notifier.Run(ctx) }()
	err := al.engine.Run(ctx)
	if nerr := <-done; err == nil {
		err = nerr
	}
	return err
}

func (al *alerting) close() {
	if al.engine != nil {
		if err := al.engine.Close(); err != nil {
			al.log.Warn("cannot save alert state", "err", err)
		}
	}
	if al.notifier != nil {
		al.notifier.Close()
	}
	if al.mqtt != nil {
		al.mqtt.Disconnect(250)
	}
}

// sink hands the engine's changes to the notifier.
type sink struct{ n *notify.Notifier }

func (s sink) Update(ctx context.Context, as []alert.Alert) error {
	out := make([]notify.Alert, len(as))
	for i, a := range as {
		status := "firing"
		if a.State != alert.Firing {
			status = "resolved"
		}
		out[i] = notify.Alert{Fingerprint: a.Fingerprint, Labels: a.Labels, Annotations: a.Annotations, Status: status,
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.Annotations["dashboard_url"], Seq: a.Seq,
			Acknowledged: a.Ack != nil, Muted: a.Muted()}
	}
	if err := s.n.Update(ctx, out); err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	return nil
}

// lateIntake is the ingestor's health for the engine, which is built
// before the ingestor (the ingestor judges through it).
type lateIntake struct {
	in atomic.Pointer[ingest.Ingestor]
}

func (l *lateIntake) set(in *ingest.Ingestor) { l.in.Store(in) }

func (l *lateIntake) Health() string {
	if in := l.in.Load(); in != nil {
		return in.Health()
	}
	return "starting"
}
