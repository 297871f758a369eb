package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/drivers/serialport"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// streamPort plugs a simulated stream device into a pty for the test.
func streamPort(t *testing.T, baud int, every time.Duration, gen func(time.Time) []byte) *sim.StreamPort {
	t.Helper()
	p := sim.NewStreamPort(filepath.Join(t.TempDir(), "tty"), serialport.Mode{Baud: baud}, every, gen, nil)
	if err := p.Plug(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Unplug(nil) })
	return p
}

// TestReadBuoy: `read -port -profile` on an NMEA buoy prints its readings
// as they arrive, then what was decoded and refused.
func TestReadBuoy(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	buoy := &sim.BuoyStream{Env: sim.Environment{Seed: 4}, Lat: 60.0845, Lon: 23.5391, Met: "XDR", Seed: 1,
		Faults: sim.BuoyFaults{BadChecksum: 0.2}}
	p := streamPort(t, 4800, time.Second, func(now time.Time) []byte { mu.Lock(); defer mu.Unlock(); return buoy.Next(now) })
	code, out, errOut := run(t, "read", "-port", p.Link, "-profile", "generic/met-buoy-gmx500-awac", "-for", "3s")
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"at 4800 8N1, listening for 3s", "METRIC / EVENT", "wind_speed", "m/s", "air_temperature",
		"latitude", "frames decoded", "refused: checksum"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestReadReaderFromConfig: `read -c -device` on a configured RFID reader
// prints the tag event; a reader that sends nothing gets exit code 1 and
// a hint. (A pty ignores baud rates, so a wrong one cannot be shown here.)
func TestReadReaderFromConfig(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	reader := sim.NewEM4100Reader(3)
	reader.Present("14008EC793", time.Now())
	p := streamPort(t, 9600, 20*time.Millisecond, func(now time.Time) []byte { mu.Lock(); defer mu.Unlock(); return reader.Read(now) })
	silent := streamPort(t, 9600, time.Second, func(time.Time) []byte { return nil })
	dir := t.TempDir()
	write := func(link string, baud int) string {
		path := filepath.Join(dir, fmt.Sprintf("gw%d.yaml", baud))
		cfg := fmt.Sprintf(`gateway: {id: farm}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
buffer: {dir: %s}
streams:
  - {id: gate, profile: priority/rdm6300, port: %s, baud: %d}
`, filepath.Join(dir, "buf"), link, baud)
		if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	code, out, errOut := run(t, "read", "-c", write(p.Link, 9600), "-device", "gate", "-for", "2s")
	if code != ExitOK || !strings.Contains(out, "EVENT tag 14008EC793") || !strings.Contains(out, "state=present") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = run(t, "read", "-c", write(silent.Link, 2400), "-device", "gate", "-for", "2s")
	if code != ExitFail || !strings.Contains(out, "nothing decoded: check the baud rate (tried 2400") {
		t.Fatalf("silent reader: exit %d\n%s", code, out)
	}
	code, _, errOut = run(t, "read", "-port", filepath.Join(dir, "absent"), "-profile", "priority/rdm6300", "-for", "1s")
	if code != ExitFail || !strings.Contains(errOut, "cannot open") || !strings.Contains(errOut, "fieldwatch-gateway ports") {
		t.Fatalf("absent port: exit %d %s", code, errOut)
	}
}

// TestReadMQTTSource: `read -device` on a configured MQTT source prints the
// readings of what is published while it listens.
func TestReadMQTTSource(t *testing.T) {
	mosq := testenv.StartMosquitto(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	cfg := fmt.Sprintf(`gateway: {id: farm}
uplink: {brokers: ["%[1]s"]}
buffer: {dir: %[2]s}
mqtt_sources:
  - {id: chirpstack, profile: chirpstack/soil-sensor, brokers: ["%[1]s"], topic: "application/+/device/+/event/up"}
`, mosq.URL, filepath.Join(dir, "buf"))
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	payload, err := os.ReadFile("../../../drivers/mqttsrc/testdata/chirpstack/lse01-up.json")
	if err != nil {
		t.Fatal(err)
	}
	pub := testenv.MQTTClient(t, mosq.URL, "chirpstack")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // publish until the read has surely subscribed
		defer wg.Done()
		for {
			pub.Publish("application/1/device/a84041000181c0e1/event/up", 0, false, payload).Wait()
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	code, out, errOut := run(t, "read", "-c", path, "-device", "chirpstack", "-for", "2s")
	close(stop)
	wg.Wait()
	if code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"a84041000181c0e1", "soil_moisture", "31.2", "messages received"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestValidateStreams: validate counts stream devices and MQTT sources and
// runs the test vectors of their profiles too.
func TestValidateStreams(t *testing.T) {
	code, out, errOut := run(t, "validate", "-c", "../../../deploy/gateway.example.yaml")
	if code != ExitOK || !strings.Contains(out, "3 stream device(s), 1 MQTT source(s)") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	dir := t.TempDir()
	prof, err := os.ReadFile("../../../firmware-profiles/priority/rdm6300.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "profiles", "priority"), 0o755)
	os.WriteFile(filepath.Join(dir, "profiles", "priority", "rdm6300.yaml"),
		[]byte(strings.Replace(string(prof), `key: "14008EC793"`, `key: "14008EC794"`, 1)), 0o644)
	cfg := filepath.Join(dir, "gw.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`gateway: {id: farm}
uplink: {brokers: ["tcp://127.0.0.1:1883"]}
buffer: {dir: %s}
profiles_dir: %s
streams:
  - {id: gate, profile: priority/rdm6300, port: /dev/ttyUSB0}
`, filepath.Join(dir, "buf"), filepath.Join(dir, "profiles"))), 0o644)
	code, _, errOut = run(t, "validate", "-c", cfg)
	if code != ExitConfig || !strings.Contains(errOut, "priority/rdm6300 fails its own test vectors") {
		t.Fatalf("a profile with a wrong vector: exit %d %s", code, errOut)
	}
}

// TestReadNDBCFile: `read -file` fetches an NDBC file once and prints its
// rows' readings.
func TestReadNDBCFile(t *testing.T) {
	code, out, errOut := run(t, "read", "-file", "../../../drivers/ndbc/testdata/41010.txt", "-profile", "noaa/ndbc-stdmet-realtime2", "-for", "1s")
	if code != ExitOK || !strings.Contains(out, "wind_speed") || !strings.Contains(out, "38 frames decoded") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}
