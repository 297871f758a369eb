package browser

// The harness: the system under test (StartStack) and a page in chromium
// (OpenPage) with bounded helpers.
//
// To add a browser test (the map, the language switch, charts, CSV export):
//
//	func TestSomething(t *testing.T) {
//		s := StartStack(t)                   // sim, cloud, two gateways; waits for readings
//		p := OpenPage(t, s.URL, 1280, 900)   // chromium on the console; fails the test on console errors
//		p.Click(t, pickSel("farm-north"))    // a real mouse click, once the page stops scrolling
//		p.WaitJS(t, "chart drawn", `document.querySelector("#chart-plot canvas") !== null`, waitLong)
//		got := Eval[string](t, p, `document.querySelector("#chart-title").textContent`)
//		p.Screenshot(t, "console-chart")     // docs/img with FIELDWATCH_SCREENSHOTS=1, else t.TempDir()
//	}
//
// Compare what the page shows with what the same cloud's API says
// (s.Stations, s.Alerts, testenv.GetJSON(s.URL+"api/v1/…")), never with
// constants that a refresh may have changed. Wait with WaitJS or WaitVisible
// (every wait is bounded; never sleep). Change a simulated reading with the
// sensors in s (s.Air.Set(…)); take a station offline with s.StopGateway.
// Keep the page's selectors in the constants at the top of console_test.go,
// so a redesign changes one place.
// Actions that are meant to log errors take them with p.TakeErrors before
// the test ends; anything left fails it.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// Bounds of the waits. Generous: a loaded 2-core machine runs the cloud, two
// gateways and chromium at once.
const (
	waitShort = 15 * time.Second // one browser action (evaluate, screenshot)
	waitLong  = 60 * time.Second // something the page shows after a refresh (every 5 s)
)

// chromium is Debian's package (`make deps` installs it); nothing is
// downloaded. $FIELDWATCH_CHROMIUM overrides it.
func chromiumPath(t testing.TB) string {
	if p := os.Getenv("FIELDWATCH_CHROMIUM"); p != "" {
		return p
	}
	const p = "/usr/bin/chromium"
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found; run `make deps` to install Debian's chromium", p)
	}
	return p
}

// bins holds the binaries TestMain builds once.
var bins string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fieldwatch-browser-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins = dir
	if err := testenv.Build("../..", dir, "./gateway/cmd/fieldwatch-gateway", "./cloud/cmd/fieldwatch-cloud"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one of our binaries running for a test.
type proc = testenv.Binary

// start runs one of the binaries TestMain built.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	return testenv.StartBinary(t, filepath.Join(bins, name), args...)
}

// sensor is a simulated Modbus sensor whose registers hold what the test
// sets, so what the gateway reads, the cloud stores and the page shows is
// known exactly and does not move under the test's feet.
type sensor struct {
	mu   sync.Mutex
	regs map[uint16]uint16
}

func (s *sensor) Registers(time.Time) map[uint16]uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint16]uint16, len(s.regs))
	for k, v := range s.regs {
		out[k] = v
	}
	return out
}

// Set puts v, scaled by 1/scale (10 for tenths), into register addr.
func (s *sensor) Set(addr uint16, v, scale float64) {
	s.mu.Lock()
	s.regs[addr] = uint16(int16(math.Round(v * scale)))
	s.mu.Unlock()
}

// Renke RS-ECTH-N01 soil probe (renke/rs-ecth-n01): moisture %, temperature
// °C (tenths), EC µS/cm.
func soilProbe(moisture, temperature, ec float64) *sensor {
	s := &sensor{regs: map[uint16]uint16{}}
	s.Set(0, moisture, 10)
	s.Set(1, temperature, 10)
	s.Set(2, ec, 1)
	return s
}

// Renke RS-WS-N01-8 air sensor (renke/rs-ws-n01-8): humidity %,
// temperature °C (tenths).
func airSensor(humidity, temperature float64) *sensor {
	s := &sensor{regs: map[uint16]uint16{}}
	s.Set(0, humidity, 10)
	s.Set(1, temperature, 10)
	return s
}

// Air temperature register of airSensor.
const airTemperature = 1

// Stack is the system under test: a Modbus TCP simulator, the cloud binary
// on embedded defaults (its own broker, SQLite, every rule pack) and two
// gateway binaries, each a station.
type Stack struct {
	URL      string // the console: http://127.0.0.1:port/
	Air      *sensor
	Soil     []*sensor
	gateways map[string]*proc // by station id
	mqtt     string           // the cloud's broker, for gateways started later
}

// Two stations: farm-north (two soil probes and an air sensor) and
// orchard-south (one soil probe), on one simulated serial server.
const gatewayConfig = `gateway:
  id: %s
  site: %s
%s  location: {lat: %s, lon: %s}
uplink:
  brokers: [tcp://%s]
  batch_delay: 200ms
  ack_timeout: 10s
  state_interval: 2s
buffer:
  dir: %s
  fsync: off
http:
  listen: 127.0.0.1:%d
buses:
  - name: dtu
    type: tcp
    address: %s
    timeout: 5s
    retries: 0
    quarantine: {after: 100}
    devices:
%s`

// StartStack starts the system and waits until the cloud's API shows every
// device of both stations with a latest value. cloudArgs are added to the
// cloud's command line (such as "-c", a config file).
func StartStack(t *testing.T, cloudArgs ...string) *Stack {
	t.Helper()
	s := &Stack{
		Air:  airSensor(62.5, 21.4),
		Soil: []*sensor{soilProbe(31.2, 14.8, 412), soilProbe(27.9, 15.3, 388), soilProbe(35.6, 13.1, 1250)},
	}
	srv := sim.NewServer(nil)
	srv.AddUnit(1, s.Soil[0])
	srv.AddUnit(2, s.Soil[1])
	srv.AddUnit(3, s.Soil[2])
	srv.AddUnit(10, s.Air)
	simAddr := sim.Listen(t, srv)
	var mqttAddr string
	s.URL, mqttAddr = StartCloud(t, cloudArgs...)
	s.mqtt = mqttAddr

	s.gateways = map[string]*proc{}
	var procs []*proc
	gateway := func(id, site, names, lat, lon, devices string) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "gateway.yaml")
		body := fmt.Sprintf(gatewayConfig, id, site, names, lat, lon, mqttAddr, filepath.Join(dir, "buffer"),
			testenv.FreePort(t), simAddr, devices)
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		p := start(t, "fieldwatch-gateway", "run", "-c", cfg)
		procs = append(procs, p)
		s.gateways[id] = p
	}
	// farm-north has Chinese display names, orchard-south none; both have
	// labels (the inventory's filter).
	gateway("farm-north", "north-farm", "  name: 北区农场 1 号站\n  site_name: 北区农场\n  labels: {county: acheng, kind: farm}\n", "45.7560", "126.6420", `      - {id: soil-east, profile: renke/rs-ecth-n01, unit: 1, interval: 1s}
      - {id: soil-west, profile: renke/rs-ecth-n01, unit: 2, interval: 1s}
      - {id: air-mast, profile: renke/rs-ws-n01-8, unit: 10, interval: 1s}
`)
	// 55 km from farm-north: at the zoom the map fits them in (at most 8)
	// stations a few km apart overlap, and the top marker takes the click.
	gateway("orchard-south", "south-orchard", "  labels: {county: shuangcheng, kind: orchard}\n", "45.3100", "126.2200", `      - {id: soil-orchard, profile: renke/rs-ecth-n01, unit: 3, interval: 1s}
`)
	testenv.Eventually(t, "both stations online with a latest value for every device", waitLong, func() bool {
		for _, p := range procs {
			if p.Exited() {
				t.Fatalf("%s exited while starting:\n%s", p.Name, p.Logs())
			}
		}
		st, err := s.Stations()
		if err != nil || len(st) != 2 {
			return false
		}
		for _, x := range st {
			if x.State != "online" || len(x.Devices) == 0 {
				return false
			}
			for _, d := range x.Devices {
				if len(d.Latest) == 0 {
					return false
				}
			}
		}
		return true
	})
	return s
}

// A buoy station: one NMEA buoy on a TCP "multiplexer" (the gateway
// connects to it, as to a serial device server), moored at the gateway's
// location with a 100 m watch circle.
const buoyGatewayConfig = `gateway:
  id: %[1]s
  site: river
  location: {lat: %[2]v, lon: %[3]v}
uplink:
  brokers: [tcp://%[4]s]
  batch_delay: 200ms
  ack_timeout: 10s
  state_interval: 2s
buffer:
  dir: %[5]s
  fsync: off
http:
  listen: 127.0.0.1:%[6]d
streams:
  - id: buoy
    profile: generic/met-buoy-gmx500-awac
    address: %[7]s
    mooring: {lat: %[2]v, lon: %[3]v, radius_m: 100}
`

// Buoy is a simulated NMEA buoy served over TCP, one burst of sentences a
// second while Talking.
type Buoy struct {
	mu       sync.Mutex
	talking  bool
	drifting bool
}

// Drift moves the buoy 300 m east of its mooring from now on.
func (b *Buoy) Drift() {
	b.mu.Lock()
	b.drifting = true
	b.mu.Unlock()
}

// Talk starts or stops the buoy's sentences.
func (b *Buoy) Talk(on bool) {
	b.mu.Lock()
	b.talking = on
	b.mu.Unlock()
}

// StartBuoy adds station id, a gateway with one NMEA buoy moored at
// lat, lon that drifts 300 m east once driftAfter has passed (a drift
// event), and waits until the cloud shows its latitude and longitude.
func (s *Stack) StartBuoy(t *testing.T, id string, lat, lon float64, driftAfter time.Duration) *Buoy {
	t.Helper()
	b := &Buoy{talking: true}
	t0 := time.Now()
	stream := &sim.BuoyStream{Env: sim.Environment{Seed: 11}, Lat: lat, Lon: lon, Met: "XDR", Seed: 5,
		Drift: func(at time.Time) (float64, float64) {
			if b.drifting || at.Sub(t0) > driftAfter { // called with b.mu held
				return 0, 300
			}
			return 0, 0
		}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for now := range tick.C {
					b.mu.Lock()
					var out []byte
					if b.talking {
						out = stream.Next(now)
					}
					b.mu.Unlock()
					if _, err := c.Write(out); err != nil {
						return
					}
				}
			}()
		}
	}()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gateway.yaml")
	body := fmt.Sprintf(buoyGatewayConfig, id, lat, lon, s.mqtt, filepath.Join(dir, "buffer"), testenv.FreePort(t), ln.Addr())
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, "fieldwatch-gateway", "run", "-c", cfg)
	s.gateways[id] = p
	testenv.Eventually(t, id+" online with a latitude and longitude", waitLong, func() bool {
		if p.Exited() {
			t.Fatalf("%s exited while starting:\n%s", p.Name, p.Logs())
		}
		st, err := s.Stations()
		if err != nil {
			return false
		}
		for _, x := range st {
			if x.ID != id || x.State != "online" {
				continue
			}
			n := 0
			for _, d := range x.Devices {
				for _, l := range d.Latest {
					if l.Metric == "latitude" || l.Metric == "longitude" {
						n++
					}
				}
			}
			return n == 2
		}
		return false
	})
	return b
}

// StopGateway stops station id's gateway as an operator would (SIGTERM: it
// says "offline" to the cloud before it exits) and waits until it has
// exited.
func (s *Stack) StopGateway(t *testing.T, id string) {
	t.Helper()
	p := s.gateways[id]
	if p == nil {
		t.Fatalf("no gateway %s", id)
	}
	p.Stop(t, syscall.SIGTERM) // an error if it takes over 20 s
}

// StartCloud starts the cloud binary on embedded defaults (its own MQTT
// broker, SQLite, every rule pack) on free loopback ports, with args added
// to its command line (e.g. -c and a config file), waits until it is
// healthy, and returns the console's URL and the broker's address.
func StartCloud(t testing.TB, args ...string) (url, mqttAddr string) {
	t.Helper()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	mqttAddr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	start(t, "fieldwatch-cloud", append([]string{"run", "-data", t.TempDir(), "-http", httpAddr, "-mqtt-listen", mqttAddr}, args...)...)
	url = "http://" + httpAddr + "/"
	testenv.Eventually(t, "cloud healthy", waitLong, func() bool {
		c := http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url + "healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url, mqttAddr
}

// apiStation is the part of GET /api/v1/stations the tests read.
type apiStation struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Devices []struct {
		ID     string `json:"id"`
		State  string `json:"state"`
		Latest []struct {
			Metric string   `json:"metric"`
			Unit   string   `json:"unit"`
			Value  *float64 `json:"value"`
		} `json:"latest"`
	} `json:"devices"`
	Events []json.RawMessage `json:"events"`
}

// Stations is what the cloud's API says now.
func (s *Stack) Stations() ([]apiStation, error) {
	var out []apiStation
	return out, testenv.GetJSON(s.URL+"api/v1/stations", &out)
}

// apiAlert is the part of GET /api/v1/alerts the tests read.
type apiAlert struct {
	Rule        string            `json:"rule"`
	State       string            `json:"state"`
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Alerts is what the cloud's API says now.
func (s *Stack) Alerts() ([]apiAlert, error) {
	var out []apiAlert
	return out, testenv.GetJSON(s.URL+"api/v1/alerts", &out)
}

// Message is one console message, exception or browser log entry.
type Message struct {
	Kind   string // "console", "exception" or "log"
	Level  string // error, warning, info, log, debug, assert…
	Source string // of a log entry: network, security (CSP), javascript…
	Text   string
	URL    string
}

func (m Message) String() string {
	s := m.Kind + " " + m.Level
	if m.Source != "" {
		s += " (" + m.Source + ")"
	}
	s += ": " + m.Text
	if m.URL != "" {
		s += " [" + m.URL + "]"
	}
	return s
}

// isError: every error counts, none is let through (the page declares its
// icon, so chromium no longer asks for a missing /favicon.ico).
func (m Message) isError() bool {
	return m.Kind == "exception" || m.Level == "error" || m.Level == "assert"
}

// Page is the console open in a headless chromium of its own.
type Page struct {
	ctx  context.Context // the tab; every action runs under a timeout derived from it
	mu   sync.Mutex
	msgs []Message
	seen int // messages already returned by TakeErrors
}

// OpenPage starts chromium with a viewport of width × height, opens url
// and waits for it to load. Every console error, uncaught exception and
// browser-log error (CSP violations, failed requests) the page produces
// until the test ends fails the test, unless taken with TakeErrors.
// Chromium is stopped and its profile removed when the test ends.
func OpenPage(t testing.TB, url string, width, height int) *Page {
	t.Helper()
	profile, err := os.MkdirTemp("", "fieldwatch-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(profile),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(width, height),
		chromedp.Env("TZ=Asia/Shanghai"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	p := &Page{ctx: ctx}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for chromium to exit
		// Chromium's helpers may write to the profile for a moment after.
		deadline := time.Now().Add(10 * time.Second)
		for os.RemoveAll(profile) != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	})
	// Registered after the cleanup above, so it runs before chromium stops
	// (and before the cloud does: a request refused then is no page error).
	t.Cleanup(func() {
		for _, m := range p.TakeErrors() {
			t.Errorf("console: %s", m)
		}
	})

	// The first action starts chromium; it must not carry a timeout of its
	// own (that would stop the browser), so a timer bounds it.
	timer := time.AfterFunc(waitLong, cancelTab)
	err = chromedp.Listen(ctx, p.record)
	timer.Stop()
	if err != nil {
		t.Fatalf("cannot start chromium: %v", err)
	}
	p.do(t, "set the viewport", chromedp.EmulateViewport(int64(width), int64(height)))
	p.do(t, "open "+url, chromedp.Navigate(url))
	return p
}

// record keeps an event; it runs on chromedp's reading goroutine, so it
// only appends.
func (p *Page) record(ev any) {
	var m Message
	switch e := ev.(type) {
	case *cdpruntime.EventConsoleAPICalled:
		var parts []string
		for _, a := range e.Args {
			parts = append(parts, remoteText(a))
		}
		m = Message{Kind: "console", Level: string(e.Type), Text: strings.Join(parts, " ")}
		if e.StackTrace != nil && len(e.StackTrace.CallFrames) > 0 {
			f := e.StackTrace.CallFrames[0]
			m.URL = fmt.Sprintf("%s:%d", f.URL, f.LineNumber+1)
		}
	case *cdpruntime.EventExceptionThrown:
		d := e.ExceptionDetails
		m = Message{Kind: "exception", Level: "error", Text: d.Text, URL: fmt.Sprintf("%s:%d", d.URL, d.LineNumber+1)}
		if d.Exception != nil {
			m.Text += " " + remoteText(d.Exception)
		}
	case *log.EventEntryAdded:
		m = Message{Kind: "log", Level: string(e.Entry.Level), Source: string(e.Entry.Source), Text: e.Entry.Text, URL: e.Entry.URL}
	default:
		return
	}
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
}

func remoteText(o *cdpruntime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if len(o.Value) > 0 {
		var v any
		if json.Unmarshal(o.Value, &v) == nil {
			return fmt.Sprint(v)
		}
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.UnserializableValue)
}

// Messages are every message so far.
func (p *Page) Messages() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Message(nil), p.msgs...)
}

// TakeErrors returns the errors since the last call; they no longer fail
// the test.
func (p *Page) TakeErrors() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Message
	for _, m := range p.msgs[p.seen:] {
		if m.isError() {
			out = append(out, m)
		}
	}
	p.seen = len(p.msgs)
	return out
}

// do runs an action bounded by waitShort.
func (p *Page) do(t testing.TB, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitShort)
	defer cancel()
	if _, err := chromedp.Run(ctx, a); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates the JavaScript expression js in the page and decodes its
// value (by JSON) into T.
func Eval[T any](t testing.TB, p *Page, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitShort)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// EvalAsync is Eval for an expression whose value is a promise: it waits
// (at most waitShort) for the promise and decodes what it resolves to.
func EvalAsync[T any](t testing.TB, p *Page, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitShort)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// settledJS resolves once the page has not scrolled for five animation
// frames (the console scrolls smoothly to a station or chart it opens).
const settledJS = `new Promise((done) => {
  let y = window.scrollY, still = 0;
  const f = () => {
    if (window.scrollY === y) still++; else { y = window.scrollY; still = 0; }
    if (still >= 5) done(true); else requestAnimationFrame(f);
  };
  requestAnimationFrame(f);
})`

// Click sends a real mouse click to the first element matching the CSS
// selector sel, once it is visible and the page has stopped scrolling. The
// page redraws its lists every 5 s; a click that finds its element
// replaced in between is tried again, within waitShort.
func (p *Page) Click(t *testing.T, sel string) {
	t.Helper()
	deadline := time.Now().Add(waitShort)
	for {
		EvalAsync[bool](t, p, settledJS)
		ctx, cancel := context.WithTimeout(p.ctx, waitShort)
		_, err := chromedp.Run(ctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
}

// Navigate opens url in the page and waits for it to load.
func (p *Page) Navigate(t testing.TB, url string) {
	t.Helper()
	p.do(t, "open "+url, chromedp.Navigate(url))
}

// Reload reloads the page and waits for it to load.
func (p *Page) Reload(t *testing.T) {
	t.Helper()
	p.do(t, "reload", chromedp.Reload())
}

// WaitJS waits, at most limit, until the expression js is truthy in the
// page (polled in the page on every animation frame and DOM change, by
// chromedp.Poll), and returns its value as JSON.
func (p *Page) WaitJS(t testing.TB, what, js string, limit time.Duration) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, limit+waitShort)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Poll[json.RawMessage](js, chromedp.WithPollingTimeout(limit),
		chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		if errors.Is(err, chromedp.ErrPollingTimeout) || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("timed out after %v waiting: %s", limit, what)
		}
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return v
}

// WaitVisible waits, at most limit, until an element matching the CSS
// selector sel is visible.
func (p *Page) WaitVisible(t *testing.T, sel string, limit time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		t.Fatalf("%s not visible within %v: %v", sel, limit, err)
	}
}

// SetViewport changes the viewport (a desktop one: no mobile zoom, so
// window.innerWidth is width).
func (p *Page) SetViewport(t *testing.T, width, height int) {
	t.Helper()
	p.do(t, "set the viewport", chromedp.EmulateViewport(int64(width), int64(height)))
	// Let the layout follow before anyone measures it.
	p.WaitJS(t, fmt.Sprintf("viewport %d wide", width), fmt.Sprintf("window.innerWidth === %d", width), waitShort)
}

// Screenshot saves a full-page PNG as name.png: in docs/img when
// FIELDWATCH_SCREENSHOTS=1 (`make screenshots`), else in t.TempDir(). It
// returns the path.
func (p *Page) Screenshot(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("FIELDWATCH_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs", "img")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(p.ctx, waitShort)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
	return path
}
