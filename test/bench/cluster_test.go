package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/loadgen"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

const clusterBenchConfig = `data_dir: %s
http:
  listen: %s
store:
  influxdb:
    url: %s
    token_file: %s
    bucket: db/autogen
nats:
  urls: [%s]
  partitions: 16
  replicas: 3
alerting:
  disabled: true
`

// BenchmarkClusterIngest: the gateways' protocol (compact codec, 500
// readings a batch, 4 in flight) into a three-node NATS cluster's MQTT
// listeners, consumed by one, two and three cloud replicas sharing the
// partitioned stream and one InfluxDB (docs/scaling.md). Everything shares
// this machine's two cores: the figures say what the path costs, not what
// three machines would carry. Each run checks that InfluxDB holds every
// reading acknowledged.
func BenchmarkClusterIngest(b *testing.B) {
	bin := buildCloud(b)
	for _, replicas := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			cl := testenv.StartNATS(b, 3)
			db := testenv.StartInfluxDB(b)
			var metrics []string
			for i := 0; i < replicas; i++ {
				dir := b.TempDir()
				httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
				cfg := filepath.Join(dir, "cloud.yaml")
				conf := fmt.Sprintf(clusterBenchConfig, filepath.Join(dir, "data"), httpAddr, db.URL, db.TokenFile,
					strings.Join(cl.URLs(), ", "))
				if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
					b.Fatal(err)
				}
				testenv.StartBinary(b, bin, "run", "-c", cfg, "-log-level", "warn")
				testenv.Eventually(b, "replica healthy", 60*time.Second, func() bool { return httpOK("http://" + httpAddr + "/healthz") })
				metrics = append(metrics, "http://"+httpAddr+"/metrics")
			}
			// The partitions shared out before the load starts.
			testenv.Eventually(b, "every partition held, by every replica some", 60*time.Second, func() bool {
				total := 0.0
				for _, u := range metrics {
					m, err := testenv.Scrape(u)
					held := m["fieldwatch_nats_partitions_held"]
					if err != nil || held == 0 {
						return false
					}
					total += held
				}
				return total == 16
			})
			const gateways, perBatch, inFlight = 12, 500, 4
			perGateway := make([]int, gateways)
			for g := range perGateway {
				perGateway[g] = max(b.N/gateways, 1) * perBatch
			}
			batches := loadgen.Batches(perGateway, perBatch, time.Now())
			b.ResetTimer()
			res := loadgen.RunURLs(b, cl.MQTTURLs(), batches, telemetry.CodecCompact, inFlight)
			b.StopTimer()
			if b.Failed() {
				return
			}
			want := gateways * perGateway[0]
			if res.Readings != want {
				b.Fatalf("%d of %d readings acknowledged", res.Readings, want)
			}
			if stored := influxQLCount(b, db, "SELECT count(value) FROM "+loadgen.Metric); stored != want {
				b.Fatalf("InfluxDB holds %d of the %d readings acknowledged", stored, want)
			}
			lat := res.Lat
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(res.Readings)/res.Elapsed.Seconds(), "readings/s")
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ack_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99_ack_ms")
		})
	}
}
