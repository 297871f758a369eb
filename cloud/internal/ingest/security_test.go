package ingest

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/cloud/internal/broker"
	"github.com/fieldwatch/fieldwatch/cloud/internal/passwd"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// secureBroker is a broker with users and the topic ACL: where gateways
// connect, and how the ingestor logs in.
type secureBroker struct {
	url    string
	ingest func(*Options)
}

// secureBrokers are Mosquitto with the shipped ACL and the embedded broker,
// both reading one password file written by mosquitto_passwd.
func secureBrokers(t *testing.T, passwords string) map[string]func(t *testing.T) secureBroker {
	return map[string]func(t *testing.T) secureBroker{
		"mosquitto": func(t *testing.T) secureBroker {
			acl, err := os.ReadFile("../../../deploy/mosquitto/acl")
			if err != nil {
				t.Fatal(err)
			}
			m := testenv.StartMosquittoWith(t, testenv.MosquittoOptions{PasswordFile: passwords, ACL: string(acl)})
			return secureBroker{url: m.URL, ingest: func(o *Options) { o.Username, o.Password = "fieldwatch-cloud", "cloud-pw" }}
		},
		"embedded": func(t *testing.T) secureBroker {
			users, err := passwd.Load(passwords)
			if err != nil {
				t.Fatal(err)
			}
			b, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Users: users, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			in := b.Internal()
			return secureBroker{url: b.URL(), ingest: func(o *Options) {
				o.BrokerURL, o.Username, o.Password = b.InternalURL(), in.Username, in.Password
			}}
		},
	}
}

// TestGatewaysCannotImpersonate runs the ingestor on each secured broker
// with gateways farm-a and farm-b logged in with their own passwords:
// farm-a's batches and states published as farm-b or as farm-c (who never
// connects) reach neither a privileged observer nor the store nor the
// registry; farm-a never receives farm-b's acks; both gateways' own
// batches are stored and acked; a wrong password is refused.
func TestGatewaysCannotImpersonate(t *testing.T) {
	passwords := twoFarms(t)
	for name, start := range secureBrokers(t, passwords) {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			r := startIngest(t, b.url, openSQLite(t), func(o *Options) { o.BrokerURL = b.url }, b.ingest)
			if err := testenv.MQTTRefused(t, b.login("wrong", "farm-a", "pw-b")); err == nil {
				t.Fatal("farm-a got in with farm-b's password")
			}
			// A privileged observer of every batch and state.
			var mu sync.Mutex
			var seen []string
			obsOpts := Options{}
			b.ingest(&obsOpts)
			if obsOpts.BrokerURL == "" {
				obsOpts.BrokerURL = b.url
			}
			obs := testenv.MQTTConnect(t, mqtt.NewClientOptions().AddBroker(obsOpts.BrokerURL).SetClientID("observer").
				SetUsername(obsOpts.Username).SetPassword(obsOpts.Password).SetProtocolVersion(4))
			obs.Subscribe("fieldwatch/v1/#", 1, func(_ mqtt.Client, m mqtt.Message) {
				mu.Lock()
				seen = append(seen, m.Topic())
				mu.Unlock()
			}).Wait()

			gwA := &gateway{id: "farm-a"}
			gwA.client = testenv.MQTTConnect(t, b.login("gw-a", "farm-a", "pw-a"))
			var stolen []string // what farm-a receives on farm-b's ack topic
			gwA.client.Subscribe(telemetry.AckTopic("farm-b"), 1, func(_ mqtt.Client, m mqtt.Message) {
				mu.Lock()
				stolen = append(stolen, string(m.Payload()))
				mu.Unlock()
			}).Wait() // refused (embedded) or granted and filtered (Mosquitto): either way nothing may arrive
			gwA.client.Subscribe(telemetry.AckTopic("farm-a"), 1, gwA.onAck(t)).Wait()
			gwB := &gateway{id: "farm-b"}
			gwB.client = testenv.MQTTConnect(t, b.login("gw-b", "farm-b", "pw-b"))
			gwB.client.Subscribe(telemetry.AckTopic("farm-b"), 1, gwB.onAck(t)).Wait()

			// Forgeries first (QoS 0: the embedded broker would cut a QoS 1
			// forger off), then farm-a's own batch: one client's messages
			// are handled in order.
			state, _ := telemetry.EncodeState(telemetry.State{State: telemetry.StateOnline})
			for _, gw := range []string{"farm-b", "farm-c"} {
				gwA.client.Publish(telemetry.UpTopic(gw), 0, false, encodeFor(t, gw, "forged", 1, 3)).Wait()
				gwA.client.Publish(telemetry.StateTopic(gw), 0, true, state).Wait()
			}
			// farm-b's batch is acked before farm-a's: the ingestor publishes
			// farm-b's ack first, so farm-a would receive it first.
			gwB.publish(t, telemetry.UpTopic("farm-b"), encodeFor(t, "farm-b", "real", 1, 2))
			testenv.Eventually(t, "farm-b acked", wait, func() bool { return len(gwB.ackList()) >= 1 })
			gwA.publish(t, telemetry.UpTopic("farm-a"), encodeFor(t, "farm-a", "real", 1, 4))
			testenv.Eventually(t, "farm-a acked", wait, func() bool { return len(gwA.ackList()) >= 1 })

			mu.Lock()
			defer mu.Unlock()
			if len(stolen) != 0 {
				t.Errorf("farm-a received farm-b's acks: %q", stolen)
			}
			for _, topic := range seen {
				if strings.Contains(topic, "farm-c") || topic == telemetry.StateTopic("farm-b") {
					t.Errorf("the observer received a forgery on %s", topic)
				}
			}
			if acks := gwB.ackList(); len(acks) != 1 || acks[0].Stream != "real" || acks[0].Last != 2 {
				t.Errorf("farm-b's acks %+v; want one, for its own batch", acks)
			}
			for gw, want := range map[string]int{"farm-a": 4, "farm-b": 2, "farm-c": 0} {
				got, err := r.store.Series(context.Background(), store.SeriesQuery{Gateway: gw, Device: "soil-1",
					Metric: "soil_moisture", From: t0, To: t0.Add(time.Hour)})
				if err != nil || len(got) != want {
					t.Errorf("%s: %d samples stored (%v), want %d", gw, len(got), err, want)
				}
				for _, s := range got {
					if s.Value != nil && *s.Value == forgedValue {
						t.Errorf("%s: a forged sample was stored", gw)
					}
				}
			}
			if _, ok := r.reg.Station("farm-c"); ok {
				t.Error("the forged farm-c reached the registry")
			}
		})
	}
}

const forgedValue = 666

// encodeFor is a batch of n readings from gateway gw in stream stream;
// the "forged" stream carries forgedValue.
func encodeFor(t *testing.T, gw, stream string, first uint64, n int) []byte {
	t.Helper()
	b := &telemetry.Batch{Gateway: gw, Site: "north", Stream: stream, FirstSeq: first, Committed: first - 1}
	for i := 0; i < n; i++ {
		v := float64(i)
		if stream == "forged" {
			v = forgedValue
		}
		b.Readings = append(b.Readings, telemetry.Reading{Device: "soil-1", Metric: "soil_moisture", Unit: "%",
			Value: v, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	data, err := telemetry.Encode(b, telemetry.CodecRowsDeflate)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestConfigTopicACL: on each secured broker the ingestor publishes farm-a's
// desired configuration retained (PublishConfig); farm-b's attempt to
// overwrite it, and farm-a's own, do not change it (QoS 0: the embedded
// broker would cut a QoS 1 forger off); farm-a receives exactly the
// cloud's; farm-b, which asks for farm-a's config and then its own,
// receives its own only.
// login is a client's options for user on b.
func (b secureBroker) login(id, user, pw string) *mqtt.ClientOptions {
	return mqtt.NewClientOptions().AddBroker(b.url).SetClientID(id).SetUsername(user).SetPassword(pw).
		SetProtocolVersion(4).SetAutoReconnect(false)
}

// twoFarms is a password file for gateways farm-a and farm-b and the
// cloud.
func twoFarms(t *testing.T) string {
	passwords := filepath.Join(t.TempDir(), "passwd")
	for user, pw := range map[string]string{"farm-a": "pw-a", "farm-b": "pw-b", "fieldwatch-cloud": "cloud-pw"} {
		testenv.MosquittoPasswd(t, passwords, user, pw, "")
	}
	return passwords
}

// TestConfigTopicACL: on both brokers, the cloud's retained config
// envelope and release manifest reach their gateway only; a gateway can
// neither overwrite them nor read another's.
func TestConfigTopicACL(t *testing.T) {
	passwords := twoFarms(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	envelope := func(gw string) []byte {
		b, err := telemetry.EncodeConfig(telemetry.SignConfig(telemetry.ConfigEnvelope{Gateway: gw, Version: 1,
			Issued: t0, Config: "gateway: {id: " + gw + "}\n"}, key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	release := func(gw string) []byte {
		b, err := telemetry.EncodeRelease(telemetry.SignRelease(telemetry.Release{Version: "1.6.0", Serial: 1, Issued: t0,
			Gateways: []string{gw}, Artifacts: []telemetry.Artifact{{Target: "linux/arm64", URL: "https://h/r", Size: 1,
				SHA256: strings.Repeat("ab", 32)}}}, key))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kinds := []struct {
		name    string
		topic   func(string) string
		make    func(string) []byte
		publish func(in *Ingestor, gw string, b []byte) error
	}{
		{"config", telemetry.ConfigTopic, envelope, func(in *Ingestor, gw string, b []byte) error { return in.PublishConfig(gw, b) }},
		{"release", telemetry.ReleaseTopic, release, func(in *Ingestor, gw string, b []byte) error {
			return in.PublishRelease(context.Background(), gw, b)
		}},
	}
	for name, start := range secureBrokers(t, passwords) {
		for _, k := range kinds {
			t.Run(name+"/"+k.name, func(t *testing.T) {
				b := start(t)
				r := startIngest(t, b.url, openSQLite(t), func(o *Options) { o.BrokerURL = b.url }, b.ingest)
				testenv.Eventually(t, "ingestor connected", wait, r.in.Connected)
				if err := k.publish(r.in, "farm-a", k.make("farm-b")); err == nil {
					t.Fatal("an envelope for farm-b was published on farm-a's topic")
				}
				for _, gw := range []string{"farm-a", "farm-b"} {
					if err := k.publish(r.in, gw, k.make(gw)); err != nil {
						t.Fatal(err)
					}
				}
				var mu sync.Mutex
				got := map[string][]string{} // receiver → payloads
				record := func(who string) mqtt.MessageHandler {
					return func(_ mqtt.Client, m mqtt.Message) {
						mu.Lock()
						got[who] = append(got[who], m.Topic()+" "+string(m.Payload()))
						mu.Unlock()
					}
				}
				count := func(who string) int {
					mu.Lock()
					defer mu.Unlock()
					return len(got[who])
				}
				a := testenv.MQTTConnect(t, b.login("gw-a", "farm-a", "pw-a"))
				bb := testenv.MQTTConnect(t, b.login("gw-b", "farm-b", "pw-b"))
				bb.Publish(k.topic("farm-a"), 0, true, []byte("from farm-b")).Wait()
				a.Publish(k.topic("farm-a"), 0, true, []byte("from farm-a")).Wait()
				a.Subscribe(k.topic("farm-a"), 1, record("a")).Wait()
				testenv.Eventually(t, "farm-a receives its config", wait, func() bool { return count("a") == 1 })
				bb.Subscribe(k.topic("farm-a"), 1, record("b")).Wait() // refused or filtered
				bb.Subscribe(k.topic("farm-b"), 1, record("b")).Wait()
				testenv.Eventually(t, "farm-b receives its config", wait, func() bool { return count("b") >= 1 })
				mu.Lock()
				defer mu.Unlock()
				if want := k.topic("farm-a") + " " + string(k.make("farm-a")); got["a"][0] != want {
					t.Errorf("farm-a received %q, want the cloud's envelope", got["a"][0])
				}
				if len(got["b"]) != 1 || !strings.HasPrefix(got["b"][0], k.topic("farm-b")+" ") {
					t.Errorf("farm-b received %q; want its own config only", got["b"])
				}
			})
		}
	}
}

// TestCommandTopicACL: on both brokers, with the shipped Mosquitto ACL,
// the cloud's command reaches its gateway and the gateway's reply reaches
// the cloud; another gateway can neither send a command to it, nor read
// its commands, nor forge its reply.
func TestCommandTopicACL(t *testing.T) {
	passwords := twoFarms(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	reply := func(id, gw, msg string) []byte {
		b, err := telemetry.EncodeReply(telemetry.CommandReply{ID: id, Gateway: gw, Time: t0, Result: telemetry.ReplyOK, Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for name, start := range secureBrokers(t, passwords) {
		t.Run(name, func(t *testing.T) {
			b := start(t)
			r := startIngest(t, b.url, openSQLite(t), func(o *Options) { o.BrokerURL = b.url }, b.ingest)
			testenv.Eventually(t, "ingestor connected", wait, r.in.Connected)
			now := time.Now()
			cmd, err := telemetry.EncodeCommand(telemetry.SignCommand(telemetry.Command{ID: "c1", Gateway: "farm-a",
				Kind: telemetry.CommandRestart, Issued: now, Expires: now.Add(5 * time.Minute)}, key))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.in.SendCommand(context.Background(), "farm-b", cmd); err == nil {
				t.Fatal("a command for farm-a was sent on farm-b's topic")
			}
			var mu sync.Mutex
			got := map[string][]string{} // receiver → topic and payload
			a := testenv.MQTTConnect(t, b.login("gw-a", "farm-a", "pw-a"))
			bb := testenv.MQTTConnect(t, b.login("gw-b", "farm-b", "pw-b"))
			bb.Publish(telemetry.CmdTopic("farm-a"), 1, false, []byte("from farm-b")).Wait()
			a.Subscribe(telemetry.CmdTopic("farm-a"), 1, func(_ mqtt.Client, m mqtt.Message) {
				mu.Lock()
				got["a"] = append(got["a"], string(m.Payload()))
				mu.Unlock()
				// farm-b forges farm-a's reply first; the broker drops it.
				bb.Publish(telemetry.ReplyTopic("farm-a"), 1, false, reply("c1", "farm-a", "forged by farm-b")).Wait()
				a.Publish(telemetry.ReplyTopic("farm-a"), 1, false, reply("c1", "farm-a", "from farm-a")).Wait()
			}).Wait()
			for _, topic := range []string{telemetry.CmdTopic("farm-a"), telemetry.ReplyTopic("farm-a")} {
				bb.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { // refused or filtered
					mu.Lock()
					got["b"] = append(got["b"], m.Topic())
					mu.Unlock()
				}).Wait()
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			rep, err := r.in.SendCommand(ctx, "farm-a", cmd)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Message != "from farm-a" {
				t.Errorf("the cloud took the reply %q", rep.Message)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got["a"]) != 1 || got["a"][0] != string(cmd) {
				t.Errorf("farm-a received %q, want the cloud's command only", got["a"])
			}
			if len(got["b"]) != 0 {
				t.Errorf("farm-b received farm-a's %q", got["b"])
			}
		})
	}
}
