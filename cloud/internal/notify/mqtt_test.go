package notify

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/test/testenv"
)

type mqttMsg struct {
	topic    string
	retained bool
	payload  []byte
}

// collect subscribes c to filter and returns what it received so far.
func collect(t *testing.T, c mqtt.Client, filter string) func() []mqttMsg {
	var mu sync.Mutex
	var got []mqttMsg
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		mu.Lock()
		got = append(got, mqttMsg{m.Topic(), m.Retained(), m.Payload()})
		mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return func() []mqttMsg {
		mu.Lock()
		defer mu.Unlock()
		return append([]mqttMsg(nil), got...)
	}
}

// Per change an event on fieldwatch/v1/alerts/<severity>/<site>/<rule>, and
// the retained state on fieldwatch/v1/alerts/state/<fingerprint>, cleared
// on resolution; a real Mosquitto in between.
func TestMQTTEventsAndRetainedState(t *testing.T) {
	broker := testenv.StartMosquitto(t)
	pub := NewPahoPublisher(testenv.MQTTClient(t, broker.URL, "notifier"))
	watcher := testenv.MQTTClient(t, broker.URL, "watcher")
	events := collect(t, watcher, "fieldwatch/v1/alerts/#")

	h := openNotifier(t, "", testConfig(Receiver{Name: "mqtt", MQTT: &MQTTReceiver{}}), nil, pub, true)
	start := time.Now().Truncate(time.Second)
	a := alert(fp(1), "DOLow", "pond/1+#", "red", 1, StatusFiring, start)
	b := alert(fp(2), "GatewaySilent", "", "blue", 1, StatusFiring, start)
	delete(b.Labels, "site")
	muted := alert(fp(3), "DOLow", "pond2", "red", 1, StatusFiring, start)
	muted.Muted = true
	h.update(t, a, b, muted)
	stateA := "fieldwatch/v1/alerts/state/" + fp(1)
	eventually(t, "four messages", 10*time.Second, func() bool { return len(events()) >= 4 })
	want := []struct{ topic, key string }{
		{"fieldwatch/v1/alerts/red/pond_1__/r_DOLow", fp(1) + ":firing:1:1"},
		{stateA, fp(1) + ":firing:1:1:state"},
		{"fieldwatch/v1/alerts/blue/-/r_GatewaySilent", fp(2) + ":firing:4:1"},
		{"fieldwatch/v1/alerts/state/" + fp(2), fp(2) + ":firing:4:1:state"},
	}
	got := events()
	for i, w := range want {
		var e Event
		if err := json.Unmarshal(got[i].payload, &e); err != nil {
			t.Fatalf("message %d on %s: %v", i, got[i].topic, err)
		}
		if got[i].topic != w.topic || e.Key != w.key || e.Status != StatusFiring {
			t.Fatalf("message %d: %s key %s; want %s key %s", i, got[i].topic, e.Key, w.topic, w.key)
		}
	}

	late := testenv.MQTTClient(t, broker.URL, "late")
	states := collect(t, late, stateA)
	eventually(t, "retained state", 10*time.Second, func() bool { return len(states()) == 1 })
	if s := states()[0]; !s.retained || len(s.payload) == 0 {
		t.Fatalf("state %+v; want retained JSON", s)
	}

	r := a
	r.Seq, r.Status, r.EndsAt = 2, StatusResolved, time.Now()
	h.update(t, r)
	eventually(t, "resolution", 10*time.Second, func() bool { return len(events()) >= 6 })
	got = events()
	var e Event
	if err := json.Unmarshal(got[4].payload, &e); err != nil || e.Status != StatusResolved || e.Key != fp(1)+":resolved:1:2" {
		t.Fatalf("resolution event %s %s: %v", got[4].topic, got[4].payload, err)
	}
	if got[5].topic != stateA || len(got[5].payload) != 0 {
		t.Fatalf("state after resolution: %s %q; want an empty message on %s", got[5].topic, got[5].payload, stateA)
	}
	for _, m := range got {
		if m.topic == "fieldwatch/v1/alerts/red/pond2/r_DOLow" {
			t.Fatal("muted alert published")
		}
	}
	// The cleared state is gone for new subscribers: a marker published
	// after the clearing arrives, the alert's state does not.
	marker := testenv.MQTTClient(t, broker.URL, "marker")
	if tok := marker.Publish("fieldwatch/v1/alerts/state/zzzzzzzzzzzzzzzz", 1, true, []byte("m")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	late2 := testenv.MQTTClient(t, broker.URL, "late2")
	retained := collect(t, late2, "fieldwatch/v1/alerts/state/#")
	eventually(t, "marker", 10*time.Second, func() bool {
		for _, m := range retained() {
			if m.topic == "fieldwatch/v1/alerts/state/zzzzzzzzzzzzzzzz" {
				return true
			}
		}
		return false
	})
	for _, m := range retained() {
		if m.topic == stateA {
			t.Fatalf("state of the resolved alert still retained: %q", m.payload)
		}
	}
}
