package config

import (
	"os"
	"path/filepath"
	"testing"
)

// The hj212 section's errors name file, line and field.
func TestHJ212File(t *testing.T) {
	const logger = "    - {mn: 010000A8900016F000169DC0, pw: \"123456\", station: river-1}\n"
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("abc123\n"), 0o600)
	badPW := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(badPW, []byte("not a pw\n"), 0o600)
	loadCases(t, []fileCase{
		{"good", "hj212:\n  listen: \":2012\"\n  loggers:\n" + logger +
			"  factors:\n    w01003: {metric: turbidity, unit: NTU}\n", ""},
		{"pw_file", "hj212:\n  listen: 127.0.0.1:0\n  loggers:\n    - {mn: A1, pw_file: " + pwFile + ", station: s}\n", ""},
		{"no listener, no section", "http: {listen: 127.0.0.1:8080}\n", ""},
		{"loggers without listen", "hj212:\n  loggers:\n" + logger, "c.yaml:1: hj212.listen: is required"},
		{"no loggers", "hj212:\n  listen: \":2012\"\n", "c.yaml:1: hj212.loggers: none"},
		{"bad listen", "hj212:\n  listen: 2012\n  loggers:\n" + logger, `c.yaml:2: hj212.listen: "2012" is not host:port`},
		{"bad mn", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: \"MN-1\", pw: \"1\", station: s}\n",
			`c.yaml:4: hj212.loggers[0].mn: "MN-1" is not 1-24 letters or digits`},
		{"duplicate mn", "hj212:\n  listen: \":2012\"\n  loggers:\n" + logger +
			"    - {mn: 010000A8900016F000169DC0, pw: \"1\", station: s2}\n", "c.yaml:5: hj212.loggers[1].mn: 010000A8900016F000169DC0 is also loggers[0]'s"},
		{"no pw", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, station: s}\n", "c.yaml:4: hj212.loggers[0].pw: is required"},
		{"site name of spaces", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw: \"1\", station: s, site_name: \" \"}\n",
			`c.yaml:4: hj212.loggers[0].site_name: " " is only spaces`},
		{"long pw", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw: \"1234567\", station: s}\n", "hj212.loggers[0].pw: is not 1-6 letters"},
		{"pw and pw_file", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw: \"1\", pw_file: x, station: s}\n", "hj212.loggers[0].pw_file: give pw or pw_file"},
		{"bad pw_file", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw_file: " + badPW + ", station: s}\n", "does not hold 1-6 letters or digits"},
		{"no station", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw: \"1\"}\n", "c.yaml:4: hj212.loggers[0].station: station id is empty"},
		{"same station and device", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw: \"1\", station: s, device: d}\n    - {mn: A2, pw: \"1\", station: s, device: d}\n",
			"c.yaml:5: hj212.loggers[1].device: station s device d is also loggers[0]'s"},
		{"bad factor metric", "hj212:\n  listen: \":2012\"\n  loggers:\n" + logger + "  factors:\n    w01003:\n      metric: \"tur bidity\"\n",
			`c.yaml:7: hj212.factors.w01003.metric: metric id "tur bidity"`},
		{"bad factor code", "hj212:\n  listen: \":2012\"\n  loggers:\n" + logger + "  factors:\n    \"w01-003\": {metric: t}\n",
			`c.yaml:6: hj212.factors.w01-003: "w01-003" is not a factor code`},
		{"logger factor", "hj212:\n  listen: \":2012\"\n  loggers:\n    - mn: A1\n      pw: \"1\"\n      station: s\n      factors:\n        w01003: {metric: \"\"}\n",
			"c.yaml:8: hj212.loggers[0].factors.w01003.metric: metric id is empty"},
		{"idle", "hj212:\n  listen: \":2012\"\n  idle_timeout: 1s\n  loggers:\n" + logger, "c.yaml:3: hj212.idle_timeout: 1s is outside 10s..24h"},
		{"max_pending", "hj212:\n  listen: \":2012\"\n  max_connections: 100\n  max_pending: 200\n  loggers:\n" + logger,
			"c.yaml:4: hj212.max_pending: 200 is outside 1..max_connections (100)"},
		{"location", "hj212:\n  listen: \":2012\"\n  loggers:\n    - mn: A1\n      pw: \"1\"\n      station: s\n      location: {lat: 32.9, lon: 117.4}\n", ""},
		{"bad location", "hj212:\n  listen: \":2012\"\n  loggers:\n    - mn: A1\n      pw: \"1\"\n      station: s\n      location: {lat: 132.9, lon: 117.4}\n",
			"c.yaml:7: hj212.loggers[0].location: 132.9,117.4 is not on Earth"},
		{"offline_after", "hj212:\n  listen: \":2012\"\n  offline_after: 2h\n  loggers:\n" + logger, "c.yaml:3: hj212.offline_after: 2h0m0s is outside 0..1h"},
		{"not a gateway", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw: \"1\", station: fieldwatch-cloud}\n",
			`c.yaml:4: hj212.loggers[0].station: "fieldwatch-cloud" is a broker user that is not a gateway`},
		{"typo", "hj212:\n  listen: \":2012\"\n  loggers:\n    - {mn: A1, pw: \"1\", staton: s}\n", `c.yaml:4: hj212.loggers[0].staton: unknown field (did you mean "station"?)`},
		{"tls without key", "hj212:\n  listen: \":2012\"\n  tls: {cert_file: c.pem}\n  loggers:\n" + logger, "c.yaml:3: hj212.tls.cert_file: a TLS listener needs cert_file and key_file"},
	})
}
