package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
	"github.com/fieldwatch/fieldwatch/test/testenv"
)

// commandRecord is the cloud's answer to POST …/commands.
type commandRecord struct {
	ID    string                  `json:"id"`
	By    string                  `json:"by"`
	Reply *telemetry.CommandReply `json:"reply"`
	Error string                  `json:"error"`
}

// TestRemoteCommandsJourney runs the real binaries — the cloud on Mosquitto
// and InfluxDB with API tokens, a gateway polling three simulated Modbus
// units — and sends it remote commands with `fieldwatch-cloud fleet
// command`:
//
//   - read: an operator reads a device and gets its values;
//   - resend: a range already stored is sent again, and the cloud
//     recognises it as a replay;
//   - a viewer's token is refused by the cloud;
//   - a command signed by a key the gateway does not trust, one replayed,
//     one unsigned and one expired (the last two published straight into
//     the broker: the cloud refuses to send them) are refused by the
//     gateway and counted;
//   - restart: the gateway replies, exits with status 75, is started again
//     on the same buffer, and every item it appended is in InfluxDB exactly
//     once (counted as the fault tests count).
func TestRemoteCommandsJourney(t *testing.T) {
	r := newFaultRig(t)
	dir := t.TempDir()

	// The cloud again, with API tokens.
	tokens := filepath.Join(dir, "api-tokens.yaml")
	tokenFile := map[string]string{}
	for name, role := range map[string]string{"li.wei": "operator", "grafana": "viewer"} {
		out := cloudCmd(t, "token", "-name", name, "-role", role, "-file", tokens)
		tokenFile[name] = filepath.Join(dir, name+".token")
		if err := os.WriteFile(tokenFile[name], []byte(regexp.MustCompile(`fwt_\S+`).FindString(out)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "cloud.yaml")
	if err := os.WriteFile(cfg, []byte("http: {tokens_file: "+tokens+"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cloud.Stop(t, syscall.SIGTERM)
	r.cloud = start(t, "fieldwatch-cloud", "run", "-c", cfg, "-mqtt-url", r.mosq.URL, "-influx-url", r.db.URL,
		"-influx-token-file", r.db.TokenFile, "-influx-bucket", r.db.Bucket, "-http", r.cloudHTTP, "-data", r.cloudData)
	waitHealthy(t, r.cloudHTTP)

	key, stranger := filepath.Join(dir, "fleet.key"), filepath.Join(dir, "stranger.key")
	pub := keygen(t, key)
	cloudCmd(t, "fleet", "keygen", "-key", stranger)

	const id = "gw-cmd"
	g := &faultGateway{t: t, id: id, cfg: filepath.Join(dir, "gateway.yaml"),
		http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
	conf := fmt.Sprintf(faultGatewayConfig, id, r.mosq.URL, smallBatches, filepath.Join(dir, "buffer"), "  keep_acked: 1h",
		g.http, r.simAddr) + fmt.Sprintf("fleet: {trusted_keys: [%q]}\n", pub)
	if err := os.WriteFile(g.cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r.sensors(true)
	g.start()
	g.waitAcked(60)

	// command runs fleet command as who; it returns the cloud's record
	// (nil when the cloud refused) and the command's stderr.
	command := func(who, signer string, args ...string) (*commandRecord, string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(bins, "fieldwatch-cloud"), append([]string{"fleet", "command",
			"-api", "http://" + r.cloudHTTP, "-gateway", id, "-key", signer, "-token-file", tokenFile[who]}, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if stdout.Len() == 0 {
			if err == nil {
				t.Fatalf("fleet command %v printed nothing", args)
			}
			return nil, stderr.String()
		}
		var rec commandRecord
		if err := json.Unmarshal(stdout.Bytes(), &rec); err != nil || rec.Reply == nil {
			t.Fatalf("fleet command %v printed %s (%v)", args, stdout.String(), err)
		}
		if (err == nil) != (rec.Reply.Result == telemetry.ReplyOK) {
			t.Errorf("fleet command %v: exit %v with reply %+v", args, err, rec.Reply)
		}
		return &rec, stderr.String()
	}
	var counts struct {
		Commands map[string]uint64 `json:"commands"`
	}
	counted := func(result string, n uint64) func() bool {
		return func() bool {
			counts.Commands = nil
			return testenv.GetJSON("http://"+g.http+"/status", &counts) == nil && counts.Commands[result] == n
		}
	}

	// read: the operator gets the device's values.
	rec, _ := command("li.wei", key, "read", "soil-a")
	if rec.Reply.Result != telemetry.ReplyOK || len(rec.Reply.Readings) == 0 || rec.By != "li.wei" {
		t.Fatalf("read: %+v", rec)
	}
	for _, x := range rec.Reply.Readings {
		if x.Metric == "" || x.Time.IsZero() {
			t.Errorf("read: reading %+v", x)
		}
	}
	if rec, _ := command("li.wei", key, "read", "no-such-device"); rec.Reply.Result != telemetry.ReplyFailed ||
		!strings.Contains(rec.Reply.Error, "no device") {
		t.Errorf("read of an unknown device: %+v", rec.Reply)
	}

	// resend: items 5 … 40, stored already, come again and are recognised:
	// as whole batches replayed, or trimmed from a backlog batch that also
	// carries items not yet stored (backlog batches are larger than live
	// ones, uplink.backlog_batch_size).
	dups := func() float64 {
		return metric(t, "http://"+r.cloudHTTP+"/metrics", "fieldwatch_ingest_duplicates_total")
	}
	overlap := func() float64 {
		return metric(t, "http://"+r.cloudHTTP+"/metrics", "fieldwatch_ingest_overlap_items_total")
	}
	before, overlapBefore := dups(), overlap()
	rec, _ = command("li.wei", key, "resend", "5", "40")
	if rec.Reply.Result != telemetry.ReplyOK || rec.Reply.Items != 36 {
		t.Fatalf("resend: %+v", rec.Reply)
	}
	testenv.Eventually(t, "the resent items recognised as a replay", 60*time.Second, func() bool {
		return dups() > before || overlap()-overlapBefore >= 36
	})
	if rec, _ := command("li.wei", key, "resend", "1", "999999999"); rec.Reply.Result != telemetry.ReplyFailed ||
		!strings.Contains(rec.Reply.Error, "not all acknowledged") {
		t.Errorf("resend beyond what is acknowledged: %+v", rec.Reply)
	}

	// A viewer cannot send commands, nor list them.
	if rec, stderr := command("grafana", key, "restart"); rec != nil || !strings.Contains(stderr, "403") {
		t.Fatalf("viewer's restart: %+v, %s", rec, stderr)
	}

	// Refused by the gateway, and counted: a stranger's key, a replay.
	if rec, _ := command("li.wei", stranger, "restart"); rec.Reply.Reason != telemetry.CmdUnknownKey {
		t.Fatalf("stranger's restart: %+v", rec.Reply)
	}
	now := time.Now()
	body, err := telemetry.EncodeCommand(telemetry.SignCommand(telemetry.Command{ID: "replay-1", Gateway: id,
		Kind: telemetry.CommandRead, Device: "soil-b", Issued: now, Expires: now.Add(5 * time.Minute)}, readKey(t, key)))
	if err != nil {
		t.Fatal(err)
	}
	post := func(token string, body []byte) (int, commandRecord) {
		t.Helper()
		secret, _ := os.ReadFile(tokenFile[token])
		req, _ := http.NewRequest("POST", "http://"+r.cloudHTTP+"/api/v1/stations/"+id+"/commands", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+string(secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var rec commandRecord
		json.NewDecoder(resp.Body).Decode(&rec)
		return resp.StatusCode, rec
	}
	if code, rec := post("li.wei", body); code != 200 || rec.Reply == nil || rec.Reply.Result != telemetry.ReplyOK {
		t.Fatalf("first read: %d %+v", code, rec)
	}
	if code, rec := post("li.wei", body); code != 200 || rec.Reply == nil || rec.Reply.Reason != telemetry.CmdReplayed {
		t.Fatalf("replayed read: %d %+v", code, rec)
	}
	// Unsigned and expired: the cloud refuses them; straight into the
	// broker, the gateway does.
	expired, err := telemetry.EncodeCommand(telemetry.SignCommand(telemetry.Command{ID: "old-1", Gateway: id,
		Kind: telemetry.CommandRestart, Issued: now.Add(-10 * time.Minute), Expires: now.Add(-9 * time.Minute)}, readKey(t, key)))
	if err != nil {
		t.Fatal(err)
	}
	unsigned := []byte(fmt.Sprintf(`{"format":1,"id":"unsigned-1","gateway":%q,"kind":"restart","issued":%q,"expires":%q}`,
		id, now.Format(time.RFC3339), now.Add(time.Minute).Format(time.RFC3339)))
	for _, b := range [][]byte{expired, unsigned} {
		if code, _ := post("li.wei", b); code != http.StatusBadRequest {
			t.Errorf("the cloud answered %d to %s", code, b)
		}
	}
	mq := testenv.MQTTClient(t, r.mosq.URL, "intruder")
	for _, b := range [][]byte{expired, unsigned} {
		if tok := mq.Publish(telemetry.CmdTopic(id), 1, false, b); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	testenv.Eventually(t, "expired command refused", 60*time.Second, counted(telemetry.CmdExpired, 1))
	testenv.Eventually(t, "unsigned command refused", 60*time.Second, counted(telemetry.CmdMalformed, 1))
	for result, n := range map[string]uint64{telemetry.CmdUnknownKey: 1, telemetry.CmdReplayed: 1, telemetry.ReplyOK: 3,
		telemetry.ReplyFailed: 2} {
		if counts.Commands[result] != n {
			t.Errorf("the gateway counted %d %s, want %d (%v)", counts.Commands[result], result, n, counts.Commands)
		}
	}
	status, err := exec.Command(filepath.Join(bins, "fieldwatch-gateway"), "status", "-addr", g.http).CombinedOutput()
	if want := "commands 3 ok, 2 failed, refused: expired 1, malformed 1, replayed 1, unknown_key 1\n"; err != nil ||
		!strings.Contains(string(status), want) {
		t.Errorf("fieldwatch-gateway status: %v\n%s\nwant a line %q", err, status, want)
	}
	if m := metric(t, "http://"+g.http+"/metrics", `fieldwatch_gateway_commands_total{kind="restart",result="expired"}`); m != 1 {
		t.Errorf("fieldwatch_gateway_commands_total expired = %v", m)
	}

	// The history, newest first, for the operator only.
	var history []commandRecord
	secret, _ := os.ReadFile(tokenFile["li.wei"])
	req, _ := http.NewRequest("GET", "http://"+r.cloudHTTP+"/api/v1/stations/"+id+"/commands", nil)
	req.Header.Set("Authorization", "Bearer "+string(secret))
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		json.NewDecoder(resp.Body).Decode(&history)
		resp.Body.Close()
	}
	if len(history) != 7 || history[0].ID != "replay-1" || history[0].Reply.Reason != telemetry.CmdReplayed {
		t.Errorf("history: %d records, newest %+v", len(history), history)
	}

	// restart: the reply first, then the exit with status 75; started
	// again (as systemd would), nothing is lost nor stored twice.
	rec, _ = command("li.wei", key, "restart")
	if rec.Reply.Result != telemetry.ReplyOK {
		t.Fatalf("restart: %+v", rec.Reply)
	}
	testenv.Eventually(t, "the gateway exits", 60*time.Second, g.p.Exited)
	if code := g.p.ExitCode(); code != 75 {
		t.Fatalf("the gateway exited with %d, want 75\n%s", code, g.p.Logs())
	}
	g.start()
	waitHealthy(t, g.http)
	if gs, ok := g.status(); ok {
		g.waitAcked(gs.Buffer.NextSeq + 30)
	}
	r.accountAll(g)
}
