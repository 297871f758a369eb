package ingest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/influx"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// BenchmarkIngest runs the ingestor in this process (so -cpuprofile sees
// its costs) between a real Mosquitto and a real store: 10 gateways send
// compact batches of 500 readings, 4 in flight each, claiming committed
// only what they were acknowledged, as the gateway's uplink does. It
// checks the store holds every reading sent.
func BenchmarkIngest(b *testing.B) {
	for _, kind := range []string{"influxdb", "embedded"} {
		b.Run("store="+kind, func(b *testing.B) {
			var st store.Store
			var count func() int
			switch kind {
			case "influxdb":
				db := testenv.StartInfluxDB(b)
				s, err := influx.Open(influx.Config{URL: db.URL, Token: "fieldwatch:fieldwatch", Bucket: db.Bucket})
				if err != nil {
					b.Fatal(err)
				}
				st, count = s, func() int { return influxCount(b, db.URL, "SELECT count(value) FROM soil_moisture") }
			default:
				path := b.TempDir() + "/f.db"
				s, err := sqlite.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				st, count = s, func() int { return sqliteCount(b, path) }
			}
			defer st.Close()
			mosq := testenv.StartMosquitto(b, "set_tcp_nodelay true")
			in := New(Options{BrokerURL: mosq.URL, Store: st, Registry: registry.New(),
				Log: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- in.Run(ctx) }()
			defer func() { cancel(); <-done }()
			testenv.Eventually(b, "ingestor subscribed", wait, in.Connected)

			const gateways, perBatch, inFlight = 10, 500, 4
			batches := max(b.N/gateways, 1)
			var wg sync.WaitGroup
			b.ResetTimer()
			for g := range gateways {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := loadGateway(b, mosq.URL, fmt.Sprintf("bench-gw-%02d", g), batches, perBatch, inFlight); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			sent := gateways * batches * perBatch
			if got := count(); got != sent {
				b.Fatalf("store holds %d readings; %d were sent and acknowledged", got, sent)
			}
			b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "readings/s")
			var m dto.Metric
			if err := in.m.groups.Write(&m); err == nil && m.Histogram.GetSampleCount() > 0 {
				b.ReportMetric(m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount()), "batches/group")
			}
			var w dto.Metric
			if err := in.m.storeSeconds.Write(&w); err == nil && w.Histogram.GetSampleCount() > 0 {
				b.ReportMetric(1000*w.Histogram.GetSampleSum()/float64(w.Histogram.GetSampleCount()), "ms/group_write")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// loadGateway sends batches of perBatch readings as gateway id, keeping
// inFlight unacknowledged, and returns once every one is acknowledged.
// Each batch claims committed only the sequences below which every batch
// has been acknowledged.
func loadGateway(b *testing.B, url, id string, batches, perBatch, inFlight int) error {
	c := testenv.MQTTClient(b, url, id)
	defer c.Disconnect(0)
	enc := telemetry.NewCompactEncoder(id, "", "bench")
	type pending struct {
		last uint64
		sent telemetry.CompactSent
	}
	var mu sync.Mutex
	unacked := map[uint64]pending{} // by first sequence
	var acked, top uint64           // every sequence ≤ acked is acknowledged; top: the highest acknowledged
	slots := make(chan struct{}, inFlight)
	c.Subscribe(telemetry.AckTopic(id), 1, func(_ mqtt.Client, m mqtt.Message) {
		a, err := telemetry.DecodeAck(m.Payload())
		if err != nil || a.Resync {
			b.Errorf("%s: ack %+v: %v", id, a, err)
			return
		}
		mu.Lock()
		p, ok := unacked[a.First]
		delete(unacked, a.First)
		if ok {
			enc.Confirm(p.sent)
			top = max(top, p.last)
			acked = top
			for f := range unacked {
				acked = min(acked, f-1)
			}
		}
		mu.Unlock()
		if ok {
			<-slots
		}
	}).Wait()
	t0 := time.Now().Add(-time.Hour)
	for i := range batches {
		first := uint64(i*perBatch + 1)
		batch := &telemetry.Batch{Gateway: id, Stream: "bench", FirstSeq: first}
		for j := range perBatch {
			batch.Readings = append(batch.Readings, telemetry.Reading{Device: fmt.Sprintf("dev-%02d", j%25),
				Metric: "soil_moisture", Unit: "%", Value: float64((i+j)%400) / 10,
				Time: t0.Add(time.Duration(i*perBatch+j) * time.Millisecond)})
		}
		slots <- struct{}{}
		mu.Lock()
		batch.Committed = acked
		data, sent, err := enc.Encode(batch)
		if err != nil {
			mu.Unlock()
			return err
		}
		unacked[first] = pending{last: batch.LastSeq(), sent: sent}
		mu.Unlock()
		c.Publish(telemetry.UpTopic(id), 1, false, data)
	}
	for range inFlight { // wait for the last acks
		select {
		case slots <- struct{}{}:
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("%s: acks missing", id)
		}
	}
	return nil
}

// influxCount answers an InfluxQL count over HTTP.
func influxCount(b *testing.B, url, q string) int {
	resp, err := http.Get(url + "/query?db=db&q=" + neturl.QueryEscape(q))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Results []struct {
			Series []struct{ Values [][]any }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		b.Fatal(err)
	}
	if len(out.Results) == 0 || len(out.Results[0].Series) == 0 {
		return 0
	}
	return int(out.Results[0].Series[0].Values[0][1].(float64))
}

// sqliteCount counts the embedded store's points.
func sqliteCount(b *testing.B, path string) int {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM points").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}
