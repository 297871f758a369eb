// Package bench holds system-level benchmarks: the real binaries on real
// servers, measured from outside as a user would see them. Results go to
// docs/benchmarks.md.
package bench

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the embedded store's database, read after the run

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/loadgen"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

func buildCloud(b *testing.B) string {
	return filepath.Join(buildBinaries(b, "./cloud/cmd/fieldwatch-cloud"), "fieldwatch-cloud")
}

// BenchmarkCloudIngest publishes batches of 500 readings from 10 gateways,
// each keeping 4 batches in flight as the gateway's uplink does (codec
// rows+deflate), and measures stored-and-acknowledged readings per second
// and the time from publish to ack. It then checks that the store holds
// every reading sent.
func BenchmarkCloudIngest(b *testing.B) {
	bin := buildCloud(b)
	for _, storeKind := range []string{"influxdb", "embedded"} {
		b.Run("store="+storeKind, func(b *testing.B) {
			mosq := testenv.StartMosquitto(b)
			dataDir := b.TempDir()
			args := []string{"run", "-mqtt-url", mosq.URL, "-data", dataDir, "-log-level", "warn"}
			var db *testenv.InfluxDB
			if storeKind == "influxdb" {
				db = testenv.StartInfluxDB(b)
				args = append(args, "-influx-url", db.URL, "-influx-token-file", db.TokenFile, "-influx-bucket", db.Bucket)
			}
			httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
			args = append(args, "-http", httpAddr)
			cloud := testenv.StartBinary(b, bin, args...)
			testenv.Eventually(b, "cloud healthy", 30*time.Second, func() bool {
				return httpOK("http://" + httpAddr + "/healthz")
			})
			const gateways, perBatch, inFlight = 10, 500, 4
			perGateway := make([]int, gateways)
			for g := range perGateway {
				perGateway[g] = max(b.N/gateways, 1) * perBatch
			}
			batches := loadgen.Batches(perGateway, perBatch, time.Now())
			b.ResetTimer()
			res := loadgen.Run(b, mosq.URL, batches, telemetry.CodecRowsDeflate, inFlight)
			b.StopTimer()
			if b.Failed() {
				return
			}
			want := gateways * perGateway[0]
			if res.Readings != want {
				b.Fatalf("%d of %d readings acknowledged", res.Readings, want)
			}
			var stored int
			if db != nil {
				stored = influxQLCount(b, db, "SELECT count(value) FROM "+loadgen.Metric)
			} else {
				cloud.Stop(b, syscall.SIGTERM) // the database file complete and closed
				stored = sqliteCount(b, filepath.Join(dataDir, "fieldwatch.db"))
			}
			if stored != want {
				b.Fatalf("the store holds %d of the %d readings acknowledged", stored, want)
			}
			lat := res.Lat
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(res.Readings)/res.Elapsed.Seconds(), "readings/s")
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ack_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99_ack_ms")
		})
	}
}

// sqliteCount counts the generated readings in the embedded store's
// database file (cloud/internal/store/sqlite's schema).
func sqliteCount(b *testing.B, path string) int {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT count(*) FROM points JOIN series ON series.id = points.series WHERE series.metric = ?`,
		loadgen.Metric).Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
}
