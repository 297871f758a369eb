package browser

// BenchmarkConsoleFirstPaint: issue 13's "with 500 stations and 10,000
// series on the embedded store, the console's first useful paint under 1 s".
//
//	go test -run '^$' -bench ConsoleFirstPaint -benchtime 10x ./test/browser/
//
// The real cloud binary on embedded defaults (its own MQTT broker, SQLite,
// every rule pack), with a password file of 500 gateways; 500 MQTT clients,
// one per gateway, each logged in with its own password, publish what a
// gateway publishes: a retained state (location, 8 devices with profile and
// interval, heartbeat) with an offline last will, an hour of one-minute
// history of 20 series in backlog batches, then a live batch and a state
// every minute, each batch acknowledged by the cloud after it is stored.
// Then chromium (1280 × 900) opens the console, once per iteration.
//
// First useful paint: from navigation start until a frame has been painted
// that shows every station on the map (as its own marker or counted in a
// cluster), every station in the list, and the early-warning panel (so the
// map's colours include the alerts). A script the benchmark adds to every
// new document checks this on every animation frame and, in the first frame
// where it holds, takes performance.now() in a task after that frame
// (after its paint): paint_ms. wall_ms is the benchmark's own clock, from
// asking chromium to navigate to the moment it has that time. The basemap
// (the coastline) is not part of it: stations are what the console is for
// (max_coast_ms says when it was drawn too).
//
// Each measurement is then checked against the API: 500 stations with 20
// latest values each; each station exactly once on the map; each marker's
// and list dot's colour, and each cluster's, what the API's state and
// alerts call for. cache=cold loads every file again (DevTools' cache
// disabled), cache=warm as a console left open and reloaded (ETags); api
// times the page's first API calls alone. FIELDWATCH_PAINT_DEBUG=1 logs
// each load's resource timings and long animation frames,
// FIELDWATCH_PAINT_TRACE=file.json writes a Chrome trace of one cold load.

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	jsonv2 "github.com/chromedp/cdproto/cdp/jsonv2"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/sim"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// The fleet: 500 stations, 4 soil probes (3 series) and 4 air sensors (2)
// each, 20 series a station, one reading a minute.
const (
	fleetStations = 500
	fleetSoil     = 4
	fleetAir      = 4
	fleetSeries   = fleetSoil*3 + fleetAir*2
	fleetEvery    = time.Minute
	fleetHistory  = time.Hour
)

// paintWatchJS runs in every new document before the page's scripts. It
// resolves window.__fwPaint with performance.now() in a task after the
// first frame that shows %d stations on the map and in the list, and the
// warnings panel; then window.__fwDone with when the coastline was drawn
// too (0 if not within 5 s) and, for FIELDWATCH_PAINT_DEBUG, the resources
// loaded and the long animation frames.
const paintWatchJS = `(() => {
  if (location.protocol !== "http:") return;
  const want = %d;
  let paintDone, allDone, paint = 0, coast = 0, coastSeen = false;
  window.__fwPaint = new Promise((r) => { paintDone = r; });
  window.__fwDone = new Promise((r) => { allDone = r; });
  const frames = [];
  let obs = null;
  try {
    obs = new PerformanceObserver((l) => frames.push(...l.getEntries()));
    obs.observe({ type: "long-animation-frame", buffered: true });
  } catch { /* an older browser */ }
  const count = (sel) => document.querySelectorAll(sel).length;
  const markers = ".leaflet-overlay-pane path.station-marker[data-station]";
  const clusters = ".leaflet-marker-pane .station-cluster[data-count]";
  const shown = () => {
    if (!document.querySelector("#alerts .alert-counts")) return false;
    if (document.querySelector("#map .leaflet-zoom-anim")) return false; // zooming: clusters of the old zoom
    if (count("#station-list .station-pick") !== want) return false;
    let n = count(markers);
    for (const c of document.querySelectorAll(clusters)) n += +c.dataset.count;
    return n === want;
  };
  // Leaflet's canvas renderer draws the coastline on the animation frame
  // after it adds the layer's canvas.
  const coastline = () => document.querySelector(".leaflet-overlay-pane canvas") !== null;
  const after = (f) => setTimeout(f, 0); // a task after this frame, and its paint
  const frame = () => {
    if (!paint && shown()) {
      paint = -1;
      after(() => { paint = performance.now(); paintDone({ ms: paint, markers: count(markers), clusters: count(clusters) }); });
    }
    if (!coastSeen && coastline()) {
      coastSeen = true;
      requestAnimationFrame(() => after(() => { coast = performance.now(); }));
    }
    if (paint > 0 && (coast || performance.now() > paint + 5000)) allDone({ coast,
      resources: performance.getEntriesByType("resource").map((e) => [e.name.replace(location.origin, ""),
        Math.round(e.startTime), Math.round(e.responseStart), Math.round(e.responseEnd), e.transferSize]),
      dcl: Math.round(performance.getEntriesByType("navigation")[0].domContentLoadedEventEnd),
      frames: frames.concat(obs ? obs.takeRecords() : []).map((f) => ({ start: Math.round(f.startTime), ms: Math.round(f.duration),
        render: Math.round(f.renderStart - f.startTime), layout: Math.round(f.styleAndLayoutStart - f.startTime),
        scripts: f.scripts.map((x) => [x.invoker, x.sourceURL.replace(location.origin, ""), Math.round(x.duration),
          Math.round(x.forcedStyleAndLayoutDuration)]) })) });
    else requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})()`

// mapStateJS is every station the map shows: single markers and clusters
// (stations, status), and the list's entries.
const mapStateJS = `({
  markers: ` + markersJS + `,
  clusters: [...document.querySelectorAll(".leaflet-marker-pane .station-cluster")].map((c) => ({
    stations: c.dataset.stations.split(","), status: c.dataset.status, count: +c.dataset.count })),
  list: ` + listJS + `,
})`

type paintResult struct {
	Ms       float64 `json:"ms"`
	Markers  int     `json:"markers"`
	Clusters int     `json:"clusters"`
}

// paintDetails is what __fwDone says.
type paintDetails struct {
	Coast     float64 `json:"coast"`
	Resources [][]any `json:"resources"`
	DCL       float64 `json:"dcl"`
	Frames    []any   `json:"frames"`
}

type mapState struct {
	Markers  []marker `json:"markers"`
	Clusters []struct {
		Stations []string `json:"stations"`
		Status   string   `json:"status"`
		Count    int      `json:"count"`
	} `json:"clusters"`
	List []listEntry `json:"list"`
}

func BenchmarkConsoleFirstPaint(b *testing.B) {
	dir := b.TempDir()
	fl := newFleet(fleetStations)
	passwords := filepath.Join(dir, "gateways.passwd")
	if err := os.WriteFile(passwords, fl.passwordFile(), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(cfg, []byte("mqtt:\n  password_file: "+passwords+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	url, mqttAddr := StartCloud(b, "-c", cfg, "-log-level", "warn")
	t0 := time.Now()
	fl.start(b, mqttAddr)
	b.Logf("%d stations, %d series, %d readings stored and acknowledged in %v", fleetStations,
		fleetStations*fleetSeries, fl.acked.Load(), time.Since(t0).Round(time.Millisecond))
	checkFleetAPI(b, url)

	p := OpenPage(b, "about:blank", 1280, 900)
	if out := os.Getenv("FIELDWATCH_PAINT_TRACE"); out != "" {
		defer tracePaint(b, p, url, out)
	}
	p.call(b, "add the paint watch", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: fmt.Sprintf(paintWatchJS, fleetStations)})
		return err
	})
	// The API calls the page makes first, on their own.
	b.Run("api", func(b *testing.B) {
		var stations, alerts, silences float64
		var size int
		n := 0
		client := http.Client{Timeout: waitShort}
		for b.Loop() {
			for _, c := range []struct {
				path string
				ms   *float64
			}{{"stations", &stations}, {"alerts", &alerts}, {"silences", &silences}} {
				t := time.Now()
				resp, err := client.Get(url + "api/v1/" + c.path)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %v %s", c.path, err, resp.Status)
				}
				*c.ms += float64(time.Since(t).Microseconds()) / 1000
				if c.path == "stations" {
					size = len(body)
				}
			}
			n++
		}
		var alertList []apiAlert
		if err := testenv.GetJSON(url+"api/v1/alerts", &alertList); err != nil {
			b.Fatal(err)
		}
		byRule := map[string]int{}
		for _, a := range alertList {
			byRule[a.Rule+" "+a.State+" "+a.Severity]++
		}
		b.Logf("%d alerts: %v", len(alertList), byRule)
		b.ReportMetric(stations/float64(n), "stations_ms")
		b.ReportMetric(alerts/float64(n), "alerts_ms")
		b.ReportMetric(silences/float64(n), "silences_ms")
		b.ReportMetric(float64(size)/1000, "stations_kB")
	})
	for _, cache := range []string{"cold", "warm"} {
		b.Run("cache="+cache, func(b *testing.B) {
			p.call(b, "cache", func(ctx context.Context, t *chromedp.Target) error {
				if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
					return err
				}
				_, err := cdp.Call(ctx, t, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: cache == "cold"})
				return err
			})
			if cache == "warm" { // one load to fill the cache
				p.Navigate(b, "about:blank")
				firstPaint(b, p, url)
			}
			var paint, wall, worst, coast float64
			var last paintResult
			n := 0
			for b.Loop() {
				b.StopTimer()
				p.Navigate(b, "about:blank")
				b.StartTimer()
				r, w := firstPaint(b, p, url)
				b.StopTimer()
				d := EvalAsync[paintDetails](b, p, "window.__fwDone")
				if os.Getenv("FIELDWATCH_PAINT_DEBUG") != "" {
					b.Logf("paint %.0f ms, coastline %.0f ms, DOMContentLoaded %.0f ms; resources (start, response start, end, bytes): %v\nlong frames: %v",
						r.Ms, d.Coast, d.DCL, d.Resources, d.Frames)
				}
				verifyPaint(b, p, url)
				b.StartTimer()
				n++
				paint += r.Ms
				wall += w
				worst = max(worst, r.Ms)
				coast = max(coast, d.Coast)
				last = r
			}
			b.ReportMetric(paint/float64(n), "paint_ms")
			b.ReportMetric(worst, "max_paint_ms")
			b.ReportMetric(wall/float64(n), "wall_ms")
			b.ReportMetric(coast, "max_coast_ms")
			b.Logf("%d loads: paint %.0f ms (mean), %.0f ms (max), wall %.0f ms; coastline by %.0f ms; %d single markers, %d clusters",
				n, paint/float64(n), worst, wall/float64(n), coast, last.Markers, last.Clusters)
		})
	}
}

// firstPaint opens the console (from a blank page) and returns the paint
// as the page measured it and the wall-clock milliseconds.
func firstPaint(b *testing.B, p *Page, url string) (paintResult, float64) {
	b.Helper()
	start := time.Now()
	p.Navigate(b, url)
	r := EvalAsync[paintResult](b, p, "window.__fwPaint")
	return r, float64(time.Since(start).Microseconds()) / 1000
}

// call runs f on the page's target, bounded by waitShort.
func (p *Page) call(t testing.TB, what string, f func(context.Context, *chromedp.Target) error) {
	t.Helper()
	p.do(t, what, chromedp.Func(f))
}

// verifyPaint checks what the page painted against the API: every station
// once on the map and once in the list, in the colour its state and alerts
// call for. The page is read first; should the API change in between (an
// alert starts), both are read again, a bounded number of times.
func verifyPaint(b *testing.B, p *Page, url string) {
	b.Helper()
	var diff string
	for try := 0; try < 5; try++ {
		shown := Eval[mapState](b, p, mapStateJS)
		var api []apiStation
		var alerts []apiAlert
		if err := testenv.GetJSON(url+"api/v1/stations", &api); err != nil {
			b.Fatal(err)
		}
		if err := testenv.GetJSON(url+"api/v1/alerts", &alerts); err != nil {
			b.Fatal(err)
		}
		if diff = comparePaint(api, alerts, shown); diff == "" {
			return
		}
		time.Sleep(time.Second)
	}
	b.Fatalf("the painted console differs from the API:\n%s", diff)
}

// comparePaint lists how the page differs from the API.
func comparePaint(api []apiStation, alerts []apiAlert, shown mapState) string {
	var out []string
	if len(api) != fleetStations {
		out = append(out, fmt.Sprintf("the API has %d stations, want %d", len(api), fleetStations))
	}
	status := map[string]string{} // fill status, as the marker and list dot
	worst := map[string]string{}  // what the station adds to a cluster
	for _, st := range api {
		s, w := expectedMarker(st, alerts)
		status[st.ID] = s
		worst[st.ID] = s
		if w != "" {
			worst[st.ID] = w
		}
	}
	onMap := map[string]int{}
	for _, m := range shown.Markers {
		onMap[m.Station]++
		if m.Status != status[m.Station] || m.Fill != markerFill[status[m.Station]] {
			out = append(out, fmt.Sprintf("%s: marker %+v, the API calls for %s", m.Station, m, status[m.Station]))
		}
	}
	rank := append(slices.Clone(severities), "offline", "fine")
	for _, c := range shown.Clusters {
		want := "fine"
		for _, id := range c.Stations {
			onMap[id]++
			if slices.Index(rank, worst[id]) < slices.Index(rank, want) {
				want = worst[id]
			}
		}
		if c.Count != len(c.Stations) || c.Status != want {
			out = append(out, fmt.Sprintf("cluster of %v: count %d, status %s; the API calls for %s", c.Stations, c.Count, c.Status, want))
		}
	}
	inList := map[string]int{}
	for _, e := range shown.List {
		inList[e.ID]++
		if e.Status != status[e.ID] {
			out = append(out, fmt.Sprintf("%s: list dot %s, the API calls for %s", e.ID, e.Status, status[e.ID]))
		}
	}
	for _, st := range api {
		if onMap[st.ID] != 1 || inList[st.ID] != 1 {
			out = append(out, fmt.Sprintf("%s: %d times on the map, %d in the list", st.ID, onMap[st.ID], inList[st.ID]))
		}
	}
	if len(onMap) != len(api) || len(inList) != len(api) {
		out = append(out, fmt.Sprintf("%d stations on the map and %d in the list, %d in the API", len(onMap), len(inList), len(api)))
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("… %d more", len(out)-20))
	}
	return strings.Join(out, "\n")
}

// checkFleetAPI: the API has every station, online, at its place, with a
// latest value of each of its 20 series.
func checkFleetAPI(b *testing.B, url string) {
	b.Helper()
	var api []struct {
		apiStation
		Location *telemetry.Location `json:"location"`
	}
	if err := testenv.GetJSON(url+"api/v1/stations", &api); err != nil {
		b.Fatal(err)
	}
	series := 0
	for _, st := range api {
		if st.State != "online" || st.Location == nil {
			b.Fatalf("station %s: state %s, location %v", st.ID, st.State, st.Location)
		}
		for _, d := range st.Devices {
			series += len(d.Latest)
		}
	}
	if len(api) != fleetStations || series != fleetStations*fleetSeries {
		b.Fatalf("the API has %d stations and %d series, want %d and %d", len(api), series, fleetStations, fleetStations*fleetSeries)
	}
}

// fleet is the simulated gateways.
type fleet struct {
	ids       []string
	passwords []string
	locs      []telemetry.Location
	acked     atomic.Int64
}

func newFleet(n int) *fleet {
	rng := mrand.New(mrand.NewPCG(13, 500))
	f := &fleet{}
	for i := range n {
		f.ids = append(f.ids, fmt.Sprintf("st-%03d", i+1))
		f.passwords = append(f.passwords, rand.Text())
		// Farms spread over the Songnen plain and the Sanjiang plain,
		// Heilongjiang (WGS84).
		f.locs = append(f.locs, telemetry.Location{Lat: 44.5 + rng.Float64()*4, Lon: 124 + rng.Float64()*8})
	}
	return f
}

// passwordFile is a Mosquitto password file ($7$: PBKDF2-SHA512, 101
// iterations, mosquitto_passwd's default) with every gateway.
func (f *fleet) passwordFile() []byte {
	var sb strings.Builder
	for i, id := range f.ids {
		salt := make([]byte, 12)
		rand.Read(salt)
		key, err := pbkdf2.Key(sha512.New, f.passwords[i], salt, 101, 64)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&sb, "%s:$7$101$%s$%s\n", id, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key))
	}
	return []byte(sb.String())
}

// gateway is one simulated gateway's connection and sequence.
type gateway struct {
	id, password string
	loc          telemetry.Location
	env          sim.Environment
	hot          float64 // a fixed air temperature for air-1, or 0
	client       mqtt.Client
	acks         chan telemetry.Ack
	next         uint64 // the next reading's sequence
	enc          telemetry.Encoder
}

// start connects every gateway (at most 16 connecting at once, within the
// broker's limit per address), publishes its state and an hour of history
// and waits for the acks, then keeps every gateway live (a batch and a
// state each minute, spread over the minute) until the benchmark ends.
func (f *fleet) start(b *testing.B, addr string) {
	b.Helper()
	gws := make([]*gateway, len(f.ids))
	for i, id := range f.ids {
		g := &gateway{id: id, password: f.passwords[i], loc: f.locs[i], env: sim.Environment{Seed: int64(i)},
			acks: make(chan telemetry.Ack, 4), next: 1}
		// Some stations in a heat wave: agri_heat_max24h fires orange at
		// 37 °C and red at 40 °C, so the map has colours to get right.
		switch {
		case i%50 == 7:
			g.hot = 41
		case i%20 == 3:
			g.hot = 38
		}
		gws[i] = g
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(gws))
	slots := make(chan struct{}, 16)
	now := time.Now().Truncate(fleetEvery)
	for _, g := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			err := g.connect(addr)
			<-slots
			if err == nil {
				err = g.publishState()
			}
			for at := now.Add(-fleetHistory); err == nil && at.Before(now); {
				// The history in batches of 20 minutes (400 readings), as a
				// gateway drains a backlog, then the live minute.
				end := at.Add(20 * fleetEvery)
				if end.After(now) {
					end = now
				}
				err = g.send(g.readings(at, end), true, &f.acked)
				at = end
			}
			if err == nil {
				err = g.send(g.readings(now, now.Add(fleetEvery)), false, &f.acked)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	// Live: each gateway's minute, spread over the minute.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(fleetEvery / time.Duration(len(gws)))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			g := gws[i%len(gws)]
			at := time.Now()
			err := g.publishState()
			if err == nil {
				err = g.send(g.readings(at, at.Add(time.Nanosecond)), false, &f.acked)
			}
			if err != nil {
				b.Errorf("live: %v", err)
				return
			}
		}
	}()
	b.Cleanup(func() {
		close(stop)
		<-done
		for _, g := range gws {
			g.client.Disconnect(0)
		}
	})
}

func (g *gateway) connect(addr string) error {
	offline, err := telemetry.EncodeState(telemetry.State{State: telemetry.StateOffline})
	if err != nil {
		return err
	}
	opts := mqtt.NewClientOptions().AddBroker("tcp://"+addr).SetClientID("fieldwatch-"+g.id).
		SetUsername(g.id).SetPassword(g.password).SetCleanSession(true).SetKeepAlive(30*time.Second).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(20*time.Second).
		SetBinaryWill(telemetry.StateTopic(g.id), offline, 1, true)
	g.client = mqtt.NewClient(opts)
	if tok := g.client.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("%s cannot connect: %v", g.id, tok.Error())
	}
	tok := g.client.Subscribe(telemetry.AckTopic(g.id), 1, func(_ mqtt.Client, m mqtt.Message) {
		if a, err := telemetry.DecodeAck(m.Payload()); err == nil {
			select {
			case g.acks <- a:
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("%s cannot subscribe to its acks: %v", g.id, tok.Error())
	}
	return nil
}

// devices are the gateway's devices as its state declares them.
func (g *gateway) devices() []telemetry.DeviceState {
	var out []telemetry.DeviceState
	for i := range fleetSoil {
		out = append(out, telemetry.DeviceState{ID: fmt.Sprintf("soil-%d", i+1), Profile: "renke/rs-ecth-n01",
			Interval: telemetry.Duration(fleetEvery), Health: "ok"})
	}
	for i := range fleetAir {
		out = append(out, telemetry.DeviceState{ID: fmt.Sprintf("air-%d", i+1), Profile: "renke/rs-ws-n01-8",
			Interval: telemetry.Duration(fleetEvery), Health: "ok"})
	}
	return out
}

func (g *gateway) publishState() error {
	loc := g.loc
	data, err := telemetry.EncodeState(telemetry.State{State: telemetry.StateOnline, Version: "bench",
		Location: &loc, Time: time.Now().UTC(), Heartbeat: telemetry.Duration(fleetEvery), Devices: g.devices()})
	if err != nil {
		return err
	}
	tok := g.client.Publish(telemetry.StateTopic(g.id), 1, true, data)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("%s: state not published: %v", g.id, tok.Error())
	}
	return nil
}

// readings are the gateway's readings of every series, one a minute in
// [from, to), as its poller takes them (values as the registers carry
// them: tenths, EC in whole µS/cm).
func (g *gateway) readings(from, to time.Time) []telemetry.Reading {
	var out []telemetry.Reading
	r := func(dev, metric, unit string, v, per float64, at time.Time) telemetry.Reading {
		return telemetry.Reading{Device: dev, Metric: metric, Unit: unit, Value: math.Round(v*per) / per, Time: at,
			Quality: telemetry.Good, Clock: telemetry.ClockNTP}
	}
	for at := from; at.Before(to); at = at.Add(fleetEvery) {
		for p := range fleetSoil {
			dev := fmt.Sprintf("soil-%d", p+1)
			out = append(out, r(dev, "soil_moisture", "%", g.env.SoilMoisture(at, p), 10, at),
				r(dev, "soil_temperature", "°C", g.env.SoilTemperature(at, p), 10, at),
				r(dev, "soil_ec", "µS/cm", g.env.SoilEC(at, p), 1, at))
		}
		for a := range fleetAir {
			temp := g.env.AirTemperature(at) + float64(a)*0.3
			if g.hot != 0 && a == 0 {
				temp = g.hot
			}
			dev := fmt.Sprintf("air-%d", a+1)
			out = append(out, r(dev, "air_humidity", "%", g.env.AirHumidity(at), 10, at),
				r(dev, "air_temperature", "°C", temp, 10, at))
		}
	}
	return out
}

// send publishes readings as one batch and waits (at most 30 s) for the
// cloud's ack of it, which it sends once they are stored.
func (g *gateway) send(rs []telemetry.Reading, backlog bool, acked *atomic.Int64) error {
	batch := &telemetry.Batch{Gateway: g.id, Stream: "bench", FirstSeq: g.next, Committed: g.next - 1,
		Readings: rs, Backlog: backlog}
	data, err := g.enc.Encode(batch, telemetry.CodecRowsDeflate)
	if err != nil {
		return err
	}
	if tok := g.client.Publish(telemetry.UpTopic(g.id), 1, false, data); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("%s: batch not published: %v", g.id, tok.Error())
	}
	deadline := time.After(30 * time.Second)
	for {
		select {
		case a := <-g.acks:
			if a.Last == batch.LastSeq() {
				g.next = a.Last + 1
				acked.Add(int64(len(rs)))
				return nil
			}
		case <-deadline:
			return fmt.Errorf("%s: no ack for %d–%d within 30 s", g.id, batch.FirstSeq, batch.LastSeq())
		}
	}
}

// tracePaint writes a Chrome trace (DevTools' Performance panel or
// ui.perfetto.dev open it) of one cold load up to the first useful paint to
// path: FIELDWATCH_PAINT_TRACE=path.
func tracePaint(b *testing.B, p *Page, url, path string) {
	b.Helper()
	var mu sync.Mutex
	var events []jsonv2.Value
	complete := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *tracing.EventDataCollected:
			mu.Lock()
			events = append(events, e.Value...)
			mu.Unlock()
		case *tracing.EventTracingComplete:
			once.Do(func() { close(complete) })
		}
	})
	p.Navigate(b, "about:blank")
	p.call(b, "start tracing", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, tracing.Start, tracing.StartParams{TransferMode: tracing.StartTransferModeReportEvents,
			TraceConfig: &tracing.TraceConfig{IncludedCategories: []string{"devtools.timeline", "v8.execute", "blink.user_timing",
				"loading", "disabled-by-default-devtools.timeline", "disabled-by-default-devtools.timeline.frame",
				"disabled-by-default-v8.cpu_profiler", "toplevel"}, EnableSampling: true}})
		return err
	})
	p.Navigate(b, url)
	r := EvalAsync[paintResult](b, p, "window.__fwPaint")
	p.call(b, "stop tracing", func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, tracing.End, cdp.Empty{})
		return err
	})
	select {
	case <-complete:
	case <-time.After(waitLong):
		b.Fatal("the trace did not complete")
	}
	mu.Lock()
	data, err := json.Marshal(map[string]any{"traceEvents": events})
	mu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("trace of a load (paint %.0f ms) in %s", r.Ms, path)
}
