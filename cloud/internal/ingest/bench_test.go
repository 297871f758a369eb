package ingest

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	neturl "net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fieldwatch/fieldwatch/cloud/internal/registry"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/influx"
	"github.com/fieldwatch/fieldwatch/cloud/internal/store/sqlite"
	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/loadgen"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// BenchmarkIngest runs the ingestor in this process (so -cpuprofile sees
// its costs) between a real Mosquitto and a real store: 10 gateways
// (test/loadgen, as in test/bench) send compact batches of 500 readings, 4
// in flight each, claiming committed only what they were acknowledged. It
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
				st, count = s, func() int { return influxCount(b, db.URL, "SELECT count(value) FROM "+loadgen.Metric) }
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
			sent := max(b.N/gateways, 1) * gateways * perBatch
			batches := loadgen.Batches(loadgen.Split(sent, gateways), perBatch, time.Now().Add(-time.Hour))
			b.ResetTimer()
			res := loadgen.Run(b, mosq.URL, batches, telemetry.CodecCompact, inFlight)
			b.StopTimer()
			if res.Readings != sent {
				b.Fatalf("%d of %d readings acknowledged", res.Readings, sent)
			}
			if got := count(); got != sent {
				b.Fatalf("store holds %d readings; %d were sent and acknowledged", got, sent)
			}
			b.ReportMetric(float64(sent)/res.Elapsed.Seconds(), "readings/s")
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
