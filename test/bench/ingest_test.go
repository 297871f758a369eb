// Package bench holds system-level benchmarks: the real binaries on real
// servers, measured from outside as a user would see them. Results go to
// docs/benchmarks.md.
package bench

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

func buildCloud(b *testing.B) string {
	return filepath.Join(buildBinaries(b, "./cloud/cmd/fieldwatch-cloud"), "fieldwatch-cloud")
}

// BenchmarkCloudIngest publishes batches of 500 readings from 10 gateways,
// each keeping 4 batches in flight as the gateway's uplink does, and
// measures stored-and-acknowledged readings per second and the time from
// publish to ack.
func BenchmarkCloudIngest(b *testing.B) {
	bin := buildCloud(b)
	for _, storeKind := range []string{"influxdb", "embedded"} {
		b.Run("store="+storeKind, func(b *testing.B) {
			mosq := testenv.StartMosquitto(b)
			args := []string{"run", "-mqtt-url", mosq.URL, "-data", b.TempDir(), "-log-level", "warn"}
			if storeKind == "influxdb" {
				db := testenv.StartInfluxDB(b)
				args = append(args, "-influx-url", db.URL, "-influx-token-file", db.TokenFile, "-influx-bucket", db.Bucket)
			}
			httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(b))
			args = append(args, "-http", httpAddr)
			cmd := exec.Command(bin, args...)
			cmd.Stderr = os.Stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
			for i := 0; ; i++ {
				resp, err := http.Get("http://" + httpAddr + "/healthz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				if i > 300 {
					b.Fatal("cloud not healthy")
				}
				time.Sleep(100 * time.Millisecond)
			}
			const gateways, perBatch, inFlight = 10, 500, 4
			batches := max(b.N, gateways)
			lat := run(b, mosq.URL, gateways, batches/gateways, perBatch, inFlight)
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(len(lat)*perBatch)/b.Elapsed().Seconds(), "readings/s")
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ack_ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99_ack_ms")
		})
	}
}

// run drives the gateways and returns the publish-to-ack latencies.
func run(b *testing.B, url string, gateways, perGateway, perBatch, inFlight int) []time.Duration {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	t0 := time.Now()
	b.ResetTimer()
	for g := 0; g < gateways; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("bench-gw-%02d", g)
			sent := map[uint64]time.Time{}
			var smu sync.Mutex
			slots := make(chan struct{}, inFlight)
			c := testenv.MQTTClient(b, url, id)
			c.Subscribe(telemetry.AckTopic(id), 1, func(_ mqtt.Client, m mqtt.Message) {
				a, err := telemetry.DecodeAck(m.Payload())
				if err != nil {
					b.Error(err)
					return
				}
				smu.Lock()
				at, ok := sent[a.First]
				delete(sent, a.First)
				smu.Unlock()
				if ok {
					mu.Lock()
					lat = append(lat, time.Since(at))
					mu.Unlock()
					<-slots
				}
			}).Wait()
			var enc telemetry.Encoder
			for i := 0; i < perGateway; i++ {
				first := uint64(i*perBatch + 1)
				batch := &telemetry.Batch{Gateway: id, Stream: "bench", FirstSeq: first, Committed: first - 1}
				for j := 0; j < perBatch; j++ {
					batch.Readings = append(batch.Readings, telemetry.Reading{Device: fmt.Sprintf("dev-%02d", j%25),
						Metric: "soil_moisture", Unit: "%", Value: float64(j%400) / 10,
						Time: t0.Add(time.Duration(i*perBatch+j) * time.Millisecond)})
				}
				data, err := enc.Encode(batch, telemetry.CodecRowsDeflate)
				if err != nil {
					b.Error(err)
					return
				}
				slots <- struct{}{}
				smu.Lock()
				sent[first] = time.Now()
				smu.Unlock()
				c.Publish(telemetry.UpTopic(id), 1, false, data)
			}
			for i := 0; i < inFlight; i++ { // wait for the last acks
				select {
				case slots <- struct{}{}:
				case <-time.After(60 * time.Second):
					b.Error("acks missing")
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	return lat
}
