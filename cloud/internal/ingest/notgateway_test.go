package ingest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// TestNonGatewaysAreRefused: a batch and a state on the topics of a user
// named in NotGateways (an alert reader, the cloud itself) are refused and
// counted, not acknowledged, and do not make a station; a gateway's batch
// published after them is stored and acknowledged, so they were handled.
func TestNonGatewaysAreRefused(t *testing.T) {
	url := testenv.StartMosquitto(t).URL
	r := startIngest(t, url, openSQLite(t), func(o *Options) {
		o.NotGateways = []string{"fieldwatch-cloud", "fieldwatch-alerts"}
	})
	reader := newGateway(t, url, "fieldwatch-alerts")
	online, err := telemetry.EncodeState(telemetry.State{State: telemetry.StateOnline, Site: "north"})
	if err != nil {
		t.Fatal(err)
	}
	reader.publish(t, telemetry.UpTopic("fieldwatch-alerts"), encode(t, "fieldwatch-alerts", 1, 3))
	reader.publish(t, telemetry.StateTopic("fieldwatch-alerts"), online)
	reader.publish(t, telemetry.UpTopic("fieldwatch-cloud"), encode(t, "fieldwatch-cloud", 1, 3))
	testenv.Eventually(t, "three refusals", wait, func() bool {
		return testutil.ToFloat64(r.in.m.rejected.WithLabelValues("not_gateway")) == 3
	})
	gw := newGateway(t, url, "gw1")
	gw.publish(t, telemetry.UpTopic("gw1"), encode(t, "gw1", 1, 3))
	testenv.Eventually(t, "the gateway's batch acked", wait, func() bool { return len(gw.ackList()) == 1 })
	if n := len(reader.ackList()); n != 0 {
		t.Fatalf("%d acks to the alert reader", n)
	}
	if _, ok := r.reg.Station("fieldwatch-alerts"); ok {
		t.Fatal("the alert reader became a station")
	}
	if _, ok := r.reg.Station("fieldwatch-cloud"); ok {
		t.Fatal("the cloud's own user became a station")
	}
	if b := testutil.ToFloat64(r.in.m.batches); b != 1 {
		t.Fatalf("%v batches stored; want only the gateway's", b)
	}
}
