package rollout

import (
	"testing"

	"github.com/fieldwatch/fieldwatch/telemetry"
)

func TestObserveConfig(t *testing.T) {
	rb := func(from, to uint64) *telemetry.ConfigRollback {
		return &telemetry.ConfigRollback{From: from, To: to, Reason: "health check failed within 6s: no reading from soil-a"}
	}
	for _, c := range []struct {
		name   string
		state  telemetry.ConfigState
		want   Outcome
		newest uint64
	}{
		{"not received", telemetry.ConfigState{Version: 3, Source: "remote"}, Pending, 3},
		{"under its health check", telemetry.ConfigState{Version: 5, Checking: 5, Source: "remote"}, Pending, 5},
		{"under its check, an older error", telemetry.ConfigState{Version: 5, Checking: 5, Error: "x", ErrorVersion: 5}, Pending, 5},
		{"kept", telemetry.ConfigState{Version: 5, Source: "remote"}, Healthy, 5},
		{"rolled back", telemetry.ConfigState{Version: 3, Source: "remote", Error: "health…", ErrorVersion: 5, Rollback: rb(5, 3)}, Bad, 5},
		{"refused", telemetry.ConfigState{Version: 3, Source: "remote", Error: "invalid: …", ErrorVersion: 5}, Bad, 5},
		{"an older rollback", telemetry.ConfigState{Version: 3, Source: "remote", Rollback: rb(4, 3)}, Pending, 4},
		{"newer", telemetry.ConfigState{Version: 6, Source: "remote"}, Bad, 6},
		{"local file", telemetry.ConfigState{Source: "local"}, Pending, 0},
	} {
		o, why, newest := observeConfig(&c.state, 5)
		if o != c.want || newest != c.newest || (o == Bad) != (why != "") {
			t.Errorf("%s: got %v %q newest %d; want %v newest %d", c.name, o, why, newest, c.want, c.newest)
		}
	}
}
