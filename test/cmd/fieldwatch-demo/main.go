// Command fieldwatch-demo runs the whole system on one machine for `make
// demo`: simulated sensors (fieldwatch-sim: Modbus units, an RS485 line, a
// cattle-race tag reader and a buoy), the cloud on embedded defaults
// (fieldwatch-cloud run, with its HJ 212 platform listener) and three
// gateways (fieldwatch-gateway run: a farm, a buoy, and a fish pond that
// also reports in HJ 212 to the cloud's listener) with the demo configs,
// prints the dashboard URL once readings arrive, and stops everything
// cleanly on Ctrl-C (gateways first, so their last readings are sent).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding the binaries")
	state := flag.String("state", ".demo", "directory for the demo's data and logs")
	config := flag.String("config", "deploy/demo/gateway.yaml", "the demo farm gateway's config")
	buoyConfig := flag.String("buoy-config", "deploy/demo/buoy.yaml", "the demo buoy gateway's config")
	pondConfig := flag.String("pond-config", "deploy/demo/pond.yaml", "the demo pond gateway's config (MQTT and HJ 212)")
	cloudConfig := flag.String("cloud-config", "deploy/demo/cloud.yaml", "the demo cloud's config (its HJ 212 listener)")
	httpAddr := flag.String("http", "127.0.0.1:8080", "dashboard address (another free port is used if taken)")
	flag.Parse()
	if err := run(*bin, *state, demoConfigs{*config, *buoyConfig, *pondConfig, *cloudConfig}, *httpAddr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// Addresses in the demo config, replaced when the port is taken.
const (
	demoMQTT = "127.0.0.1:18830"
	demoSim  = "127.0.0.1:15020"
	demoGWUI = "127.0.0.1:9101"
	demoBuoy = "127.0.0.1:9102"
	demoPond = "127.0.0.1:9103"
	demoHJ   = "127.0.0.1:19212"
)

// demoConfigs are the config files the demo starts its parts with.
type demoConfigs struct{ farm, buoy, pond, cloud string }

func run(bin, state string, configs demoConfigs, httpAddr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	addrs := map[string]string{}
	for _, a := range []string{demoMQTT, demoSim, demoGWUI, demoBuoy, demoPond, demoHJ, httpAddr} {
		addrs[a] = freeOr(a)
		if addrs[a] != a {
			fmt.Printf("demo: %s is in use; using %s instead\n", a, addrs[a])
		}
	}
	// The configs name .demo/ paths and the default ports; point them at
	// the state directory and the ports actually free.
	localize := func(from, to string) error {
		cfg, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		text := string(cfg)
		for a, b := range addrs {
			text = strings.ReplaceAll(text, a, b)
		}
		text = strings.ReplaceAll(text, ".demo/", filepath.ToSlash(state)+"/")
		// Owner only: the pond's and the cloud's hold an HJ 212 password.
		return os.WriteFile(to, []byte(text), 0o600)
	}
	gwConfig, buoyConfig := filepath.Join(state, "gateway.yaml"), filepath.Join(state, "buoy.yaml")
	pondConfig, cloudConfig := filepath.Join(state, "pond.yaml"), filepath.Join(state, "cloud.yaml")
	for from, to := range map[string]string{configs.farm: gwConfig, configs.buoy: buoyConfig, configs.pond: pondConfig, configs.cloud: cloudConfig} {
		if err := localize(from, to); err != nil {
			return err
		}
	}
	rs485 := filepath.Join(state, "rs485")

	out := &console{w: os.Stdout}
	sim, err := launch(out, state, "sim", "\033[35m", filepath.Join(bin, "fieldwatch-sim"),
		"-listen", addrs[demoSim], "-unit", "1=soil", "-unit", "2=soil", "-unit", "3=soil", "-unit", "10=air",
		"-unit", "20=supmea/sup-do7013", "-unit", "21=boqu/bh-485-nh", "-unit", "22=remond/turbidity",
		"-rtu-link", rs485, "-rtu-baud", "4800", "-rtu-unit", "1=dfrobot/sen0657", "-rtu-unit", "2=generic/sn-3002-7in1",
		"-rfid-link", filepath.Join(state, "race"), "-rfid-kind", "fdxb",
		"-nmea-link", filepath.Join(state, "buoy"), "-nmea-baud", "4800", "-nmea-swing", "10m")
	if err != nil {
		return err
	}
	defer sim.stop()
	if err := waitPort(ctx, addrs[demoSim]); err != nil {
		return fmt.Errorf("the simulator did not come up: %w", err)
	}
	cloud, err := launch(out, state, "cloud", "\033[36m", filepath.Join(bin, "fieldwatch-cloud"), "run", "-c", cloudConfig,
		"-data", filepath.Join(state, "cloud"), "-http", addrs[httpAddr], "-mqtt-listen", addrs[demoMQTT])
	if err != nil {
		return err
	}
	defer cloud.stop()
	// The dashboard listens once the broker does; probing the broker itself
	// would make it log a client that vanished.
	if err := waitPort(ctx, addrs[httpAddr]); err != nil {
		return fmt.Errorf("the cloud did not come up: %w", err)
	}
	gw, err := launch(out, state, "gateway", "\033[33m", filepath.Join(bin, "fieldwatch-gateway"), "run", "-c", gwConfig)
	if err != nil {
		return err
	}
	defer gw.stop()
	buoy, err := launch(out, state, "buoy", "\033[34m", filepath.Join(bin, "fieldwatch-gateway"), "run", "-c", buoyConfig)
	if err != nil {
		return err
	}
	defer buoy.stop()
	pond, err := launch(out, state, "pond", "\033[32m", filepath.Join(bin, "fieldwatch-gateway"), "run", "-c", pondConfig)
	if err != nil {
		return err
	}
	defer pond.stop()

	url := "http://" + addrs[httpAddr] + "/"
	if err := waitReadings(ctx, url); err != nil {
		return err
	}
	gwBin := filepath.Join(bin, "fieldwatch-gateway")
	out.banner(fmt.Sprintf("Fieldwatch demo is running.\n  Dashboard:       %s\n  API:             %sapi/v1/stations\n"+
		"  Gateway status:  %s status -c %s   (the buoy: -c %s; the pond: -c %s)\n"+
		"  HJ 212:          the pond reports as a data logger to the cloud's listener on %s (station pond-east-hj212)\n"+
		"  Logs and data:   %s/\n  Press Ctrl-C to stop.", url, url, gwBin, gwConfig, buoyConfig, pondConfig, addrs[demoHJ], state))
	select {
	case <-ctx.Done():
	case <-sim.done:
		return fmt.Errorf("the simulator stopped; see %s/sim.log", state)
	case <-cloud.done:
		return fmt.Errorf("the cloud stopped; see %s/cloud.log", state)
	case <-gw.done:
		return fmt.Errorf("the gateway stopped; see %s/gateway.log", state)
	case <-buoy.done:
		return fmt.Errorf("the buoy gateway stopped; see %s/buoy.log", state)
	case <-pond.done:
		return fmt.Errorf("the pond gateway stopped; see %s/pond.log", state)
	}
	fmt.Println("\ndemo: stopping gateways, cloud and simulator…")
	gw.stop()
	buoy.stop()
	pond.stop()
	cloud.stop()
	sim.stop()
	fmt.Println("demo: stopped.")
	return nil
}

// freeOr returns addr if nothing listens there, else a free loopback port.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return addr
	}
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return addr
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitPort(ctx context.Context, addr string) error {
	for i := 0; i < 300; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s after 30s", addr)
}

// waitReadings polls the API until a station shows a latest value.
func waitReadings(ctx context.Context, url string) error {
	c := http.Client{Timeout: 2 * time.Second}
	for i := 0; i < 60; i++ {
		if resp, err := c.Get(url + "api/v1/latest"); err == nil {
			var latest []json.RawMessage
			err = json.NewDecoder(resp.Body).Decode(&latest)
			resp.Body.Close()
			if err == nil && len(latest) > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return fmt.Errorf("no readings reached the dashboard within 30s; see the logs above")
}

// console serialises the children's prefixed output.
type console struct {
	mu sync.Mutex
	w  io.Writer
}

func (c *console) line(prefix, color, s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "%s%-8s\033[0m %s\n", color, prefix, s)
}

func (c *console) banner(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.w, "\n\033[1;32m%s\033[0m\n\n", s)
}

type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// launch starts a binary in its own process group (so Ctrl-C reaches only
// the demo, which then stops the children in order), copying its output to
// the console and to state/<name>.log.
func launch(out *console, state, name, color, path string, args ...string) (*child, error) {
	log, err := os.Create(filepath.Join(state, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("cannot start %s (did `make build` run?): %w", path, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			out.line(name, color, sc.Text())
		}
		log.Close()
	}()
	go func() { cmd.Wait(); pw.Close(); close(c.done) }()
	return c, nil
}

// stop asks the child to stop (SIGTERM) and waits up to 15 s.
func (c *child) stop() {
	c.once.Do(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}
