package api

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestPostCommand(t *testing.T) {
	srv, a := setup(t)
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	n := 0
	cmd := func(gw string, expires time.Duration) string {
		n++
		now := time.Now()
		b, err := telemetry.EncodeCommand(telemetry.SignCommand(telemetry.Command{ID: "c" + string(rune('0'+n)), Gateway: gw,
			Kind: telemetry.CommandRead, Device: "soil-1", Issued: now.Add(-time.Minute), Expires: now.Add(expires)}, key))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("POST", "/api/v1/stations/gw1/commands", cmd("gw1", time.Minute)); code != http.StatusNotImplemented {
		t.Fatalf("without a sender: %d %s", code, body)
	}
	var fail error
	var sent []string
	a.WithCommandSender(func(ctx context.Context, gw string, c []byte) (telemetry.CommandReply, error) {
		if fail != nil {
			return telemetry.CommandReply{}, fail
		}
		sent = append(sent, gw)
		id := telemetry.CommandID(c)
		return telemetry.CommandReply{ID: id, Gateway: gw, Kind: telemetry.CommandRead, Result: telemetry.ReplyOK,
			Readings: []telemetry.ReplyReading{{Metric: "t", Value: 21}}}, nil
	})
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/api/v1/stations/gw1/commands", "not json", 400, "body: command"},
		{"/api/v1/stations/gw1/commands", cmd("gw2", time.Minute), 400, `id: the command is addressed to \"gw2\"`},
		{"/api/v1/stations/gw1/commands", cmd("gw1", -time.Second), 400, "expired"},
		{"/api/v1/stations/gw1/commands", strings.Repeat(" ", telemetry.MaxCommandBytes+1), 413, "larger than"},
		{"/api/v1/stations/gw1/commands", cmd("gw1", time.Minute), 200, `"value":21`},
	} {
		if code, body := do("POST", tc.path, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s: %d %s, want %d …%s…", tc.path, code, body, tc.code, tc.want)
		}
	}
	for err, code := range map[error]int{errors.New("not connected"): 503, ErrCommandsUnsupported: 501,
		context.DeadlineExceeded: 504} {
		fail = err
		if got, body := do("POST", "/api/v1/stations/gw1/commands", cmd("gw1", time.Minute)); got != code {
			t.Errorf("sender failing with %v: %d %s, want %d", err, got, body, code)
		}
	}
	code, body := do("GET", "/api/v1/stations/gw1/commands", "")
	var hist []CommandRecord
	if err := json.Unmarshal([]byte(body), &hist); code != 200 || err != nil {
		t.Fatalf("GET: %d %s", code, body)
	}
	if len(hist) != 4 || hist[3].Reply == nil || hist[3].Reply.Result != telemetry.ReplyOK || hist[0].Error == "" {
		t.Errorf("history %+v", hist)
	}
	if len(sent) != 1 {
		t.Errorf("sent %v", sent)
	}
}
