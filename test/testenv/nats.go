package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NATSVersion is the nats-server release the tests run against (docs/scaling.md).
const NATSVersion = "v2.15.2"

// NATSNode is one nats-server with JetStream and an MQTT listener.
type NATSNode struct {
	*Process
	Name    string
	URL     string // nats://127.0.0.1:port
	MQTTURL string // tcp://127.0.0.1:port, for gateways
	Monitor string // http://127.0.0.1:port
}

// NATSCluster is n nodes routed to each other on loopback.
type NATSCluster struct {
	Nodes []*NATSNode
}

// URLs lists every node's client URL.
func (c *NATSCluster) URLs() []string {
	var us []string
	for _, n := range c.Nodes {
		us = append(us, n.URL)
	}
	return us
}

// MQTTURLs lists every node's MQTT URL.
func (c *NATSCluster) MQTTURLs() []string {
	var us []string
	for _, n := range c.Nodes {
		us = append(us, n.MQTTURL)
	}
	return us
}

// StartNATS starts a cluster of n nats-server nodes (n = 1: a single node,
// no cluster block) with JetStream and MQTT, each on free loopback ports,
// and waits until every node reports JetStream healthy (a meta leader
// elected). The nodes are stopped when the test ends.
func StartNATS(t testing.TB, n int) *NATSCluster {
	t.Helper()
	return StartNATSWith(t, n, "")
}

// StartNATSWith is StartNATS with more configuration (an authorization
// block) in every node's file.
func StartNATSWith(t testing.TB, n int, extra string) *NATSCluster {
	t.Helper()
	bin := find(t, "FIELDWATCH_NATS_SERVER", filepath.Join(CacheDir(), "nats-server-"+NATSVersion, "nats-server"), "nats-server")
	dir := t.TempDir()
	type ports struct{ client, cluster, mqtt, http int }
	ps := make([]ports, n)
	for i := range ps {
		ps[i] = ports{FreePort(t), FreePort(t), FreePort(t), FreePort(t)}
	}
	c := &NATSCluster{}
	for i, p := range ps {
		name := fmt.Sprintf("n%d", i+1)
		var routes []string
		for j, q := range ps {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", q.cluster))
			}
		}
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 128MB
  max_file_store: 4GB
}
mqtt {
  listen: 127.0.0.1:%d
  # NATS keeps MQTT sessions and QoS 1 messages in its own streams. Left
  # unset, they may be made with 2 replicas, and losing either node then
  # stalls every MQTT client (docs/scaling.md).
  stream_replicas: %d
}
`, name, p.client, p.http, filepath.Join(dir, name, "js"), p.mqtt, min(n, 3)) + extra
		if n > 1 {
			conf += fmt.Sprintf(`cluster {
  name: fieldwatch
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, p.cluster, strings.Join(routes, ", "))
		}
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(dir, name, "nats.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		node := &NATSNode{
			Process: &Process{Name: "nats-server " + name, bin: bin, args: []string{"-c", confPath},
				log: filepath.Join(dir, name, "nats.log")},
			Name:    name,
			URL:     fmt.Sprintf("nats://127.0.0.1:%d", p.client),
			MQTTURL: fmt.Sprintf("tcp://127.0.0.1:%d", p.mqtt),
			Monitor: fmt.Sprintf("http://127.0.0.1:%d", p.http),
		}
		node.start(t)
		register(t, node.Process)
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		node.waitHealthy(t)
	}
	return c
}

// Start starts the node again (after Stop or Kill), with its data, and
// waits until it is healthy.
func (n *NATSNode) Start(t testing.TB) {
	t.Helper()
	n.start(t)
	n.waitHealthy(t)
}

// waitHealthy waits for /healthz?js-enabled-only=false to answer 200: the
// node serves clients and JetStream (with a meta leader in a cluster).
func (n *NATSNode) waitHealthy(t testing.TB) {
	t.Helper()
	n.waitFor(t, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		out, err := httpDo(ctx, "GET", n.Monitor+"/healthz", nil, "")
		if err == nil && !strings.Contains(out, `"ok"`) {
			err = fmt.Errorf("not healthy: %s", out)
		}
		return err
	})
	n.waitFor(t, dialable(strings.TrimPrefix(n.MQTTURL, "tcp://")))
}

// Kill kills the process with SIGKILL (a node lost, not shut down) and
// waits for it to exit.
func (p *Process) Kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.cmd = nil
}

// ShippedNATSUsers is the authorization block of the shipped node config
// (deploy/nats/nats.conf, at path) as the tests run it: each password hash
// replaced by "<user>-secret", and the example gateway farm-north's entry
// given to each of gateways instead. So the permissions the tests prove are
// the ones shipped.
func ShippedNATSUsers(t testing.TB, path string, gateways ...string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "\nauthorization {")
	if i < 0 {
		t.Fatalf("%s: no authorization block", path)
	}
	block := shippedHash.ReplaceAllString(s[i+1:], `{user: $1, password: $1-secret`)
	const example = "    {user: farm-north,"
	start := strings.Index(block, example)
	if start < 0 {
		t.Fatalf("%s: no entry for the example gateway farm-north", path)
	}
	end := start
	for range 3 { // the user line and its two permission lines
		end += strings.IndexByte(block[end:], '\n') + 1
	}
	var gws strings.Builder
	for _, gw := range gateways {
		gws.WriteString(strings.ReplaceAll(block[start:end], "farm-north", gw))
	}
	return block[:start] + gws.String() + block[end:]
}

var shippedHash = regexp.MustCompile(`\{user: ([a-z0-9-]+), password: "\$2a\$[^"]*"`)
